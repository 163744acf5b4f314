"""`agent-pool init`."""

from __future__ import annotations

from pathlib import Path

import click

from agent_pool.cli.context import CliContext
from agent_pool.pool.layout import POOL_DIR_NAME, PoolLayout


@click.command()
@click.option(
    "--expert",
    "experts",
    multiple=True,
    metavar="NAME",
    help="Create an expert folder (repeatable).",
)
@click.option(
    "--project-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The repository the experts work in (default: the folder holding .agent-pool).",
)
@click.pass_obj
def init(obj: CliContext, experts: tuple[str, ...], project_dir: Path | None) -> None:
    """Create ./.agent-pool (or the --pool folder). Existing files are never overwritten."""
    from agent_pool.pool.create import init_pool

    if obj.pool_option is not None:
        root = (obj.cwd / obj.pool_option).resolve()
    else:
        root = obj.cwd / POOL_DIR_NAME
    layout = PoolLayout(root)
    report = init_pool(layout, experts=list(experts), project_dir=project_dir)
    if layout.root in report.created:
        click.echo(f"created pool at {layout.root}")
    elif report.created:
        click.echo(f"updated pool at {layout.root}")
    else:
        click.echo(f"pool at {layout.root} is already complete; nothing changed")
    for path in report.created:
        if path != layout.root:
            click.echo(f"  created {path.relative_to(layout.root)}")
    if report.created and report.kept:
        click.echo(f"  kept {len(report.kept)} existing files and folders unchanged")
