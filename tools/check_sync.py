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
