"""Fail (exit 1, listing the files) if `nbdev-export` or `nbdev-clean` change anything: the notebooks are the
source and the package must be their export, with clean notebooks. Works in a dirty work tree too: it compares
file contents before and after, not against git."""
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def snapshot() -> dict:
    files = [*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('stylespace_lab/*.py')]
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

before = snapshot()
for cmd in ('nbdev-export', 'nbdev-clean'):
    subprocess.run([str(BIN/cmd)], cwd=ROOT, check=True)
after = snapshot()
changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
if changed:
    print('nbdev-export / nbdev-clean changed these files; export and clean the notebooks, then commit:')
    print('\n'.join(f'  {c}' for c in changed))
    sys.exit(1)
print(f'notebooks and package in sync ({len(after)} files)')

# The models shipped inside the package are links to the committed files in checkpoints/: one copy, two paths (the
# wheel build copies their content). A link replaced by a file would be a second copy that can drift.
assets = ROOT/'stylespace_lab'/'assets'
links = {p.name: p for p in assets.glob('*.pt')}
wrong = [n for n, p in links.items() if not (p.is_symlink() and p.resolve() == (ROOT/'checkpoints'/n).resolve())]
missing = sorted({'smileys32.pt', 'noto32.pt', 'emoji_encoder.pt'} - set(links))
if wrong or missing:
    print(f'stylespace_lab/assets must hold links to checkpoints/ for smileys32.pt, noto32.pt and emoji_encoder.pt; '
          f'not links: {wrong}, missing: {missing}')
    sys.exit(1)
print(f'package assets link to checkpoints/ ({len(links)} models)')
