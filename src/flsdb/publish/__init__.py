"""Publication: what leaves the building, and the one row-level extract that does not.

- `release.release`: `flsdb publish`: the gate, then the published tier, the restricted analyst
  extract, the extract history and approval.json, together or not at all, one publisher at a
  time (`lock`);
- `marts.publish_marts`: the published tier, output/published/ (the warehouse's publication
  schema only: aggregates with small-number suppression), DuckDB + Parquet, atomically;
- `restricted.write_restricted_extract`: the restricted analyst extract,
  output/restricted_analyst_extract/ (pseudonymised rows, NOT published);
- `history`: the extract history, every publication and who signed it off;
- `site.build_site`: the static report site, rendered from one snapshot of the published tier.
"""
