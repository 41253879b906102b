"""``bench pairs``, ``bench fetch`` and ``bench systems``: what bench knows and has."""

from __future__ import annotations

import os
from pathlib import Path

import click

from bench.errors import BenchError
from bench.cli.common import check_dirs


@click.command("pairs")
def pairs_cmd() -> None:
    """List the pairs: languages, collection, sizes, and whether the data is available here."""
    from bench.data.pairs import all_pairs

    rows = [("pair", "queries", "docs", "collection", "#queries", "#docs", "data here", "note")]
    for p in all_pairs():
        rows.append((
            p.name, p.query_lang, p.doc_lang, p.dataset_id,
            str(p.expected_queries or "-"), str(p.expected_docs or "-"),
            "yes" if p.is_available() else ("no" if p.offline else "needs internet"),
            "tuning only" if p.tuning else ("low-resource" if p.low_resource else "high-resource"),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@click.command("fetch")
@click.option("--pair", "pair_name", required=True, help="Pair whose data to fetch, e.g. sw-en.")
@click.option("--to", "to_dir", type=click.Path(path_type=Path),
              help="Also write the files as a mirror directory (for an air-gapped machine).")
def fetch_cmd(pair_name: str, to_dir: Path | None) -> None:
    """Fetch (and verify) every public file a pair needs."""
    from bench.data.pairs import get_pair, remote_files
    from bench.infra.downloads import export_mirror, fetch

    pair = get_pair(pair_name)
    remotes = remote_files(pair)
    if not remotes:
        if to_dir:
            raise BenchError(f"{pair.name} is downloaded by ir_datasets ({pair.dataset_id}), not by bench",
                             "--to mirrors bench's own files; copy ~/.ir_datasets to the other machine instead")
        collection = pair.collection()  # ir_datasets downloads on first use
        click.echo(f"{pair.name}: {len(collection.queries)} queries, {collection.docs_count} documents")
        return
    check_dirs(("--to", to_dir, True))
    for remote in remotes:
        fetch(remote, rehash=True)  # `bench fetch` hashes every cached file again
    home = os.environ.get("BENCH_HOME") or "~/.cache/bench"
    click.echo(f"{pair.name}: {len(remotes)} files verified (sha256) in {home}")
    from bench.methods.retrieve.prebuilt import fetch_corpus

    for line in fetch_corpus(pair.dataset_id):  # a corpus published outside GitHub (CIRAL, AfriCLIRMatrix)
        click.echo(line)
    if to_dir:
        export_mirror(remotes, to_dir)
        click.echo(f"mirror written to {to_dir} (use it with BENCH_MIRROR={to_dir})")


@click.command("systems")
def systems_cmd() -> None:
    """List every system (built-in and plugins): what it is and the run options (flags) it reads."""
    from bench.cli.common import systems_listing
    from bench.systems import all_systems

    for line in systems_listing(all_systems()):
        click.echo(line)
