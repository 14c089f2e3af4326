"""The host plan, printed: what will run where, on which address and ports, behind which zone, with
which proxy hosts and DNS records. Changes nothing; secrets are never part of a plan.

    python -m deploys.plan inventories/home.py                  # from the inventory and settings alone
    python -m deploys.plan inventories/home.py --limit core     # some hosts or groups
    pyinfra inventories/home.py deploys/plan.py -y              # with each host's facts (Tailscale IP, GPU)

Without contacting the hosts, what only a host can tell (its Tailscale IP when none is configured, its
GPU) is shown as unknown; run through pyinfra, the plan is exactly the one the deploy acts on.
"""

from __future__ import annotations

import fnmatch
import sys


def _matches(name: str, groups: frozenset[str], patterns: list[str]) -> bool:
    names = {name, name.split("/", 1)[-1], *groups}
    return any(fnmatch.fnmatch(each, pattern) for pattern in patterns for each in names)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    from deploys.library.context import member
    from deploys.library.plan import InventoryPlan, plan_host
    from deploys.library.settings import SettingsError, settings_for_host

    parser = argparse.ArgumentParser(prog="python -m deploys.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("inventory", help="a pyinfra inventory file, e.g. inventories/home.py")
    parser.add_argument("--limit", help="only these hosts or groups (comma-separated names or globs)")
    args = parser.parse_args(argv)

    with ctx_state.use(State()):
        inventory = make_inventory(args.inventory)
    hosts = list(inventory)
    problems = []
    for each in hosts:
        try:
            settings_for_host(each)
        except SettingsError as error:
            problems += [f"{each.name}: {line}" for line in error.problems]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    plans = InventoryPlan([member(each) for each in hosts], lambda name: None)
    patterns = [item.strip() for item in (args.limit or "").split(",") if item.strip()]
    shown = [m for m in plans.members.values() if not patterns or _matches(m.name, m.groups, patterns)]
    if not shown:
        print(f"--limit {args.limit}: no host of {args.inventory} matches", file=sys.stderr)
        return 2
    for each in shown:
        print(plan_host(plans, each.name, tailscale_ip=None, gpu=None).describe() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
else:  # run by pyinfra: the plan this deploy would act on, from the host's facts
    import click

    from deploys.library import context

    click.echo(context.current().plan.describe() + "\n", err=True)
