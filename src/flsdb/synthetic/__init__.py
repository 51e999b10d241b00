"""SYNTHETIC FLS-DB submissions in the raw contract of docs/specification/submission-format.md, and the seed builders.

Everything written here is invented. Nothing describes a real patient or a real NHS
organisation: the services come from the synthetic registry (seeds/fls_registry.csv), patients
are drawn from real population structure (ONS mid-2020, real LSOAs and deprivation deciles) but
are not people, NHS numbers start with 9 (a range not issued to patients), and postcodes use
outward codes in the unused `Y?`/`Z?` postcode areas, with a matching SYNTHETIC postcode -> LSOA
lookup written to `<out>/_reference/`.

What `generate()` writes into the landing folder `out_dir`:

- one CSV per FLS per export (`SYNnnn_<name>_<as-at date>.csv`), with the 48 contract columns;
  a few services also have an earlier export (as at about 5 months before the extract date) that
  the later export repeats with updates;
- `_reference/synthetic_nspl_postcode_lookup.csv`: postcode -> LSOA 2011 in the ONS NSPL layout;
- `_reference/injected_defects.csv`: every defect deliberately injected (file, line, class, column);
- `_reference/README.txt`: says all of this is synthetic.

Calibration (see registry_build): each year's records are the national volume times `scale`,
split among the services active that year in proportion to identification rate x expected
caseload, so that national KPI 2 / KPI 3 land on the published values, and KPI 7 (bone therapy
recommended) lands on its published national and deprivation-quintile values. Other KPIs follow
plausible per-service performance profiles (random effects).

Determinism: one numpy Generator seeded by `seed`, consumed in a fixed order; the same seed and
arguments give byte-identical files.

Modules, in pipeline order: geography (registry, LSOAs, invented postcodes) -> episodes (who,
where, when) -> pathway (what happened after the fracture) -> defects (the realistic mess) ->
exports (files as at their dates) -> reference_files; generator runs the steps. The seed
builders: registry_build, incidence_rates_build, poisson_limits_build.
"""

__all__ = ["DEFECT_CLASSES", "LOOKUP_NAME", "MANIFEST_NAME", "NSPL_COLUMNS", "SHIFTS_NAME",
           "generate"]
_HOME = {"DEFECT_CLASSES": "common", "LOOKUP_NAME": "common", "MANIFEST_NAME": "common",
         "SHIFTS_NAME": "common", "NSPL_COLUMNS": "reference_files", "generate": "generator"}


def __getattr__(name: str):
    # Lazy, so that `python -m flsdb.synthetic.registry_build` does not import the generator.
    if name in _HOME:
        import importlib
        return getattr(importlib.import_module(f"flsdb.synthetic.{_HOME[name]}"), name)
    raise AttributeError(name)
