"""Publication: what leaves the building, and the one row-level extract that does not.

- `marts.publish_marts`: the published tier, output/published/ (the warehouse's publication
  schema only: aggregates with small-number suppression), DuckDB + Parquet, atomically;
- `restricted.write_restricted_extract`: the restricted analyst extract,
  output/restricted_analyst_extract/ (pseudonymised rows, NOT published);
- `site.build_site`: the static report site, rendered from the published tier only.
"""

from __future__ import annotations

from pathlib import Path


def publish_outputs(warehouse: Path, out_dir: Path) -> str:
    """Write the published tier and the restricted analyst extract; return a summary line."""
    from flsdb.publish.marts import information_loss, publish_marts
    from flsdb.publish.restricted import write_restricted_extract

    published = publish_marts(warehouse, out_dir)
    restricted = write_restricted_extract(warehouse, out_dir)
    return (f"Published: {published}\n{information_loss(published)}\n"
            f"Restricted analyst extract (not published): {restricted}")
