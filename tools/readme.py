"""Write README.md from nbs/index.ipynb (markdown cells as they are, code cells as python blocks), since
nbdev-readme needs quarto, which cannot be installed offline. `python tools/readme.py --check` fails if the
README is out of date. A markdown cell holding `<!-- findings -->` is replaced by the study notebooks'
findings (`figures/findings_*.md`, written by their cpu/gpu runs), so the README's "what we found" is generated
from the study tables, never typed."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FINDINGS = '<!-- findings -->'

def findings(figures: Path = ROOT/'figures') -> str:
    files = sorted(figures.glob('findings_*.md'))
    if not files: return '_The study notebooks have not been run under the `cpu` profile yet._'
    return '\n\n'.join(f.read_text().strip() for f in files)

def render(nb_path: Path = ROOT/'nbs'/'index.ipynb') -> str:
    parts = []
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#|'): continue
        if c['cell_type'] == 'markdown': parts.append(src.replace(FINDINGS, findings()))
        else: parts.append(f'```python\n{src}\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv:
        if (ROOT/'README.md').read_text() != text: sys.exit('README.md is out of date: run python tools/readme.py')
        print('README.md matches nbs/index.ipynb')
    else:
        (ROOT/'README.md').write_text(text)
        print('wrote README.md')
