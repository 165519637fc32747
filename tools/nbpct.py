"""Round-trip notebooks and a plain-text 'percent' form, for editing notebooks with ordinary tools.

    python tools/nbpct.py to-nb  /tmp/01_layers.py nbs/01_layers.ipynb
    python tools/nbpct.py to-py  nbs/01_layers.ipynb   /tmp/01_layers.py

Cells are separated by lines `# %%` (code) or `# %% [markdown]` (markdown; each line of the
body starts with `# `). The notebook is the source of truth; this is only an editing aid.
"""
import hashlib, json, sys
from pathlib import Path

KERNEL = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}

def _cell(kind, lines):
    while lines and not lines[-1].strip(): lines.pop()
    while lines and not lines[0].strip(): lines.pop(0)
    if kind == 'markdown':
        lines = [l[2:] if l.startswith('# ') else l[1:] if l.startswith('#') else l for l in lines]
        return {"cell_type": "markdown", "metadata": {}, "source": "\n".join(lines)}
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "\n".join(lines)}

def _add_ids(cells):
    "Deterministic cell ids (a hash of the source), so re-converting an unchanged cell does not churn the diff."
    seen = set()
    for i, c in enumerate(cells):
        h = hashlib.sha1(c['source'].encode()).hexdigest()[:8]
        while h in seen: h = hashlib.sha1((h + str(i)).encode()).hexdigest()[:8]
        seen.add(h); c['id'] = h
    return cells

def py_to_nb(text):
    cells, kind, buf = [], None, []
    for line in text.splitlines():
        if line.startswith('# %%'):
            if kind is not None: cells.append(_cell(kind, buf))
            kind, buf = ('markdown' if '[markdown]' in line else 'code'), []
        else: buf.append(line)
    if kind is not None: cells.append(_cell(kind, buf))
    return {"cells": _add_ids(cells), "metadata": KERNEL, "nbformat": 4, "nbformat_minor": 5}

def nb_to_py(nb):
    out = []
    for c in nb['cells']:
        src = c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            out.append('# %% [markdown]\n' + '\n'.join(('# ' + l) if l else '#' for l in src.splitlines()))
        else: out.append('# %%\n' + src)
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    cmd, src, dst = sys.argv[1:4]
    if cmd == 'to-nb': Path(dst).write_text(json.dumps(py_to_nb(Path(src).read_text()), indent=1) + '\n')
    elif cmd == 'to-py': Path(dst).write_text(nb_to_py(json.loads(Path(src).read_text())))
    else: sys.exit(f'unknown command {cmd!r}: use to-nb or to-py')
