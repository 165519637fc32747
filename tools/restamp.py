"""Re-stamp results rows after a code change that is shown not to change what a run computes.

A row is `stale` when the code a run exercises changes (`experiments.code_version`). Some changes only remove work
whose result was thrown away (e.g. D's weight gradients in the G step); then the stale rows are still exactly what the
new code computes. Show that first, byte for byte, on runs of the protocol under the old and the new code (same
machine, same threads), then re-stamp: every row of code version OLD gets the current version and a record of the
re-stamp (`restamped`: from, to, why), so the audit trail stays in the row.

Run: `python tools/restamp.py OLD_VERSION --why "what was checked"` (`--dry-run` lists the rows)."""
import argparse

from stylespace_lab.core import get_path
from stylespace_lab.experiments import ResultsStore, code_version


def restamp(store: ResultsStore, old: str, new: str, why: str, dry_run: bool = False) -> list[str]:
    "Re-stamp the rows of code version `old` (the judge part of the version is kept) to `new`; their keys."
    done = []
    for key in store.keys():
        row = store.read(key)
        if row is None: continue
        code, plus, judge = row.get('code_version', '').partition('+')
        if code != old: continue
        if not dry_run:
            row['restamped'] = [*row.get('restamped', []), dict(frm=old, to=new, why=why)]
            row['code_version'] = new + plus + judge
            store.write(row)
        done.append(key)
    return done


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('old', help='the code part of the version to re-stamp (before the "+")')
    ap.add_argument('--why', required=True, help='what shows that the rows are unchanged')
    ap.add_argument('--root', default=str(get_path('results')))
    ap.add_argument('--dry-run', action='store_true')
    args = ap.parse_args()
    new = code_version()
    if args.old == new: raise SystemExit(f"{args.old} is already the current code version")
    keys = restamp(ResultsStore(args.root), args.old, new, args.why, args.dry_run)
    print(f"{'would re-stamp' if args.dry_run else 're-stamped'} {len(keys)} rows: {args.old} -> {new}")
