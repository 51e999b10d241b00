"""The contract checks of a row, as vectorised SQL over every staged row of a batch: the parsing
macros, the rules in the order of docs/specification/submission-format.md (a row is rejected once, under the
first rule it breaks, with a reason that never repeats an identifier), the file extract date, the identifier-like
tokens in Record IDs and file names, and the mixed-FLS warning."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from flsdb import contract
from flsdb.ingest.columns import BIRTH, FLS, FRACTURE, LAST_UPDATED, NHS, SITE, _lit, _q

REJECT_CODES = (
    "wrong_column_count", "missing_required_value", "invalid_date", "last_updated_after_load",
    "invalid_nhs_number",
    "unknown_fls_code", "fracture_after_extract", "fracture_before_2016",
    "birth_after_fracture", "age_over_110", "invalid_fracture_site",
)


NHS_LIKE = r"\d{3}[ \-]?\d{3}[ \-]?\d{4}"


def _parse_macro(name: str, formats: tuple[str, ...], cast: str) -> str:
    """A temp macro parsing a trimmed text in any of `formats` (contract.DATE_FORMATS or
    TIMESTAMP_FORMATS), written in full: each format's strict regex, then strptime."""
    whens = " ".join(
        f"WHEN regexp_full_match(trim(v), {_lit(contract.strict_format_regex(fmt))}) "
        f"THEN try_strptime(trim(v), {_lit(fmt)}){cast}" for fmt in formats)
    return f"CREATE OR REPLACE TEMP MACRO {name}(v) AS CASE {whens} END"


MACROS = [
    _parse_macro("_parse_date", contract.DATE_FORMATS, "::DATE"),
    _parse_macro("_parse_ts", contract.TIMESTAMP_FORMATS, ""),
    "CREATE OR REPLACE TEMP MACRO _blank(v) AS (v IS NULL OR trim(v) = '')",
    # A coded answer as staging reads it (macros/submission_fields.sql normalise_code_text):
    # whitespace of any kind removed around it, runs inside made one space.
    f"""CREATE OR REPLACE TEMP MACRO _code_text(v) AS regexp_replace(regexp_replace(v,
        {_lit('^' + contract.CODE_WHITESPACE_PATTERN + '|' + contract.CODE_WHITESPACE_PATTERN + '$')},
        '', 'g'), {_lit(contract.CODE_WHITESPACE_PATTERN)}, ' ', 'g')""",
    # A value quoted in a reason, with an invisible byte-order mark made visible; a value that
    # looks like an NHS number (whatever column it was typed into) is not repeated.
    f"""CREATE OR REPLACE TEMP MACRO _show(v) AS CASE
        WHEN regexp_full_match(trim(v), '{NHS_LIKE}')
        THEN '(a 10-digit value, not repeated here as it may be an NHS number)'
        ELSE '''' || replace(replace(v, '''', ''''''), chr(65279), '<U+FEFF>') || '''' END""",
]

IDENTIFIER_NOTE = "(the value is not repeated here because it is an identifier; see raw_line)"


def _check_sql() -> tuple[str, str, str, str]:
    """SQL for the rule a row breaks first (_rule: 1-based index or NULL), and lists/CASE giving
    the reject code, column and reason of a rule."""
    q = _q

    def msg(*parts: str) -> str:
        # parts alternate: literal text, SQL expression, literal text, ...
        return " || ".join(_lit(p) if i % 2 == 0 else p for i, p in enumerate(parts))

    rules: list[tuple[str, str, str, str]] = []  # (condition, code, column, reason expression)
    for c in contract.REQUIRED_COLUMNS:
        rules.append((f"_blank({q(c)})", "missing_required_value", c,
                      msg(f"Required value '{c}' is missing (blank).")))
    date_fmt = f"a date {contract.format_wording(contract.DATE_FORMATS)}"
    rules.append(("_lu IS NULL", "invalid_date", LAST_UPDATED,
                  msg(f"'{LAST_UPDATED}' value ", f"_show({q(LAST_UPDATED)})",
                      " is not a valid existing timestamp, expected "
                      f"{contract.format_wording(contract.TIMESTAMP_FORMATS)}.")))
    rules.append(("_dob IS NULL", "invalid_date", BIRTH,
                  msg(f"'{BIRTH}' is not a valid existing date, expected {date_fmt} "
                      f"{IDENTIFIER_NOTE}.")))
    rules.append(("_frac IS NULL", "invalid_date", FRACTURE,
                  msg(f"'{FRACTURE}' value ", f"_show({q(FRACTURE)})",
                      f" is not a valid existing date, expected {date_fmt}.")))
    # docs/specification/submission-format.md, "Rejected record": a date or timestamp that cannot
    # be parsed, or does not exist, rejects the record, whichever date column it is in.
    for c, kind in contract.COLUMNS.items():
        if kind == "date" and c not in (BIRTH, FRACTURE):
            rules.append((f"NOT _blank({q(c)}) AND _parse_date({q(c)}) IS NULL", "invalid_date", c,
                          msg(f"'{c}' value ", f"_show({q(c)})",
                              f" is not a valid existing date, expected {date_fmt}.")))
    rules.append(("_lu > _load_time()", "last_updated_after_load", LAST_UPDATED,
                  msg(f"'{LAST_UPDATED}' value ", f"_show({q(LAST_UPDATED)})",
                      " is after the time of this load (", "strftime(_load_time(), '%Y-%m-%d %H:%M')",
                      " UK time): a record cannot have changed in the future, and it would move "
                      "the extract date.")))
    rules.append(("_nhs_problem IS NOT NULL", "invalid_nhs_number", NHS,
                  msg(f"'{NHS}' is not a valid NHS number: ", "_nhs_problem",
                      " (10 ASCII digits 0-9 after removing spaces and hyphens, a correct "
                      f"modulus-11 check digit, not one digit repeated) {IDENTIFIER_NOTE}.")))
    rules.append((f"upper(_code_text({q(FLS)})) NOT IN (SELECT upper(fls_code) FROM _registry)",
                  "unknown_fls_code", FLS,
                  msg("FLS code ", f"_show({q(FLS)})", " is not in the FLS registry.")))
    rules.append(("_frac > _extract", "fracture_after_extract", FRACTURE,
                  msg("Index fracture date ", f"_show({q(FRACTURE)})",
                      " is after the file's extract date ", "strftime(_extract, '%Y-%m-%d')",
                      " (the date of the latest Last Updated in the file).")))
    rules.append((f"_frac < DATE '{contract.EARLIEST_FRACTURE_DATE}'", "fracture_before_2016",
                  FRACTURE,
                  msg("Index fracture date ", f"_show({q(FRACTURE)})",
                      f" is before {contract.EARLIEST_FRACTURE_DATE}, the start of the audit.")))
    rules.append(("_dob > _frac", "birth_after_fracture", BIRTH,
                  msg("Date of birth is after the index fracture date ",
                      f"_show({q(FRACTURE)})", f" {IDENTIFIER_NOTE}.")))
    rules.append((f"_age > {contract.MAX_AGE_YEARS}", "age_over_110", BIRTH,
                  msg("Age at the index fracture (", f"_show({q(FRACTURE)})", ") is ",
                      "_age::VARCHAR", f" years, over the maximum of {contract.MAX_AGE_YEARS} "
                      f"{IDENTIFIER_NOTE}.")))
    site_list = ", ".join(_lit(s.lower()) for s in
                          [*contract.SITES, *contract.code_wordings("fracture_site")])
    rules.append((f"lower(_code_text({q(SITE)})) NOT IN ({site_list})", "invalid_fracture_site",
                  SITE,
                  msg(f"'{SITE}' value ", f"_show({q(SITE)})",
                      f" is not one of {', '.join(contract.SITES)}.")))
    assert [r[1] for r in rules][-1] == REJECT_CODES[-1]

    rule = "CASE " + " ".join(f"WHEN {r[0]} THEN {i}" for i, r in enumerate(rules, 1)) + " END"
    codes = "[" + ", ".join(_lit(r[1]) for r in rules) + "]"
    columns = "[" + ", ".join(_lit(r[2]) for r in rules) + "]"
    reason = ("CASE _rule " + " ".join(f"WHEN {i} THEN {r[3]}" for i, r in enumerate(rules, 1))
              + " END")
    return rule, codes, columns, reason


_RULE_SQL, _CODES_SQL, _COLUMNS_SQL, _REASON_SQL = _check_sql()


def _final_sql() -> str:
    """Check every staged row of the batch at once (one vectorised statement).

    Needs _stage (the rows) and _linemap (the physical lines and file extract date of each staged
    row, in the same order:
    a POSITIONAL JOIN, which also keeps _final in file and line order so that the per-file
    inserts read only their own row groups)."""
    q = _q
    return f"""
    CREATE OR REPLACE TEMP TABLE _final AS
    SELECT *, {_RULE_SQL} AS _rule FROM (
        SELECT *, date_diff('year', _dob, _frac)
                  - CASE WHEN strftime(_frac, '%m%d') < strftime(_dob, '%m%d') THEN 1 ELSE 0 END
                  AS _age
        FROM (
            SELECT *,
                   _parse_ts({q(LAST_UPDATED)}) AS _lu, _parse_date({q(BIRTH)}) AS _dob,
                   _parse_date({q(FRACTURE)}) AS _frac,
                   _nhs_problem({q(NHS)}) AS _nhs_problem
            FROM _stage POSITIONAL JOIN _linemap
        )
    )
    """


EXTRACTS_SQL = f"""
    SELECT _fid, max(_parse_ts({_q(LAST_UPDATED)})) FILTER (
               WHERE _parse_ts({_q(LAST_UPDATED)}) <= _load_time())::DATE AS _extract
    FROM _stage GROUP BY _fid
"""


# A repeated header row inside the data (two exports joined into one file, often with a
# byte-order mark at the start of the second) is rejected under the first rule it breaks, with
# this explanation first.
_REPEATED_HEADER_SQL = (
    f"lower(trim(replace({_q('Record ID')}, chr(65279), ''))) = 'record id' AND "
    f"lower(trim(replace({_q(LAST_UPDATED)}, chr(65279), ''))) = 'last updated'")
_REPEATED_HEADER_NOTE = "This row repeats the header row (two exports joined into one file?). "

REJECTS_SQL = f"""
    SELECT _fid, _line_number, _end_line, {_CODES_SQL}[_rule] AS _code,
           {_COLUMNS_SQL}[_rule] AS _column,
           CASE WHEN {_REPEATED_HEADER_SQL} THEN {_lit(_REPEATED_HEADER_NOTE)} ELSE '' END
             || {_REASON_SQL} AS _reason, {_q(FLS)}, {_q('Record ID')}
    FROM _final WHERE _rule IS NOT NULL AND _line_number > 0
"""


def uk_now() -> datetime:
    """The time now on UK clocks (Last Updated is a UK local timestamp), without time zone. Without
    a time-zone database, UTC plus one hour (British Summer Time), the later of the two."""
    try:
        from zoneinfo import ZoneInfo
        now = datetime.now(ZoneInfo("Europe/London"))
    except Exception:  # noqa: BLE001  (no tz database: ZoneInfoNotFoundError and kin)
        from datetime import timedelta
        now = datetime.now(timezone.utc) + timedelta(hours=1)
    return now.replace(tzinfo=None, microsecond=0)


def _nhs_problem(value: str | None) -> str | None:
    """Why the NHS number is invalid (never repeating it), or None (contract.nhs_number_problem)."""
    return None if value is None else contract.nhs_number_problem(value)


# Identifier-like tokens inside Record IDs (RE2: no look-around, so the edges are matched).
# Record IDs and file names stay in the internal warehouse and quality report; the load only
# warns, so that the FLS can be asked to stop. The same shapes are checked in file names.
IDENTIFIER_TOKENS = {
    "a 10-digit number like an NHS number": r"(^|[^0-9])[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}([^0-9]|$)",
    "a UK postcode": r"(?i)(^|[^A-Z0-9])[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}([^A-Z0-9]|$)",
    # A date before 1990: no audit date is that early, but every in-scope patient's birth is.
    # (Export dates in file names, such as SYN001_x_2024-06-30.csv, are not flagged.)
    "a date like a date of birth (before 1990)": (
        r"(^|[^0-9])(19[0-8][0-9][-/.]?(0[1-9]|1[0-2])[-/.]?(0[1-9]|[12][0-9]|3[01])"
        r"|(0[1-9]|[12][0-9]|3[01])[-/.]?(0[1-9]|1[0-2])[-/.]?19[0-8][0-9])([^0-9]|$)"),
}

IDENTIFIER_TOKENS_SQL = "SELECT _fid, " + ", ".join(
    f"count(*) FILTER (WHERE regexp_matches({_q('Record ID')}, {_lit(p)})), "
    f"min(_line_number) FILTER (WHERE regexp_matches({_q('Record ID')}, {_lit(p)}))"
    for p in IDENTIFIER_TOKENS.values()) + " FROM _final WHERE _rule IS NULL GROUP BY _fid"


def name_warnings(name: str) -> list[str]:
    """A warning when a file name holds an identifier-like token (never repeating it)."""
    kinds = identifier_tokens_in(name)
    if not kinds:
        return []
    return ["the file name holds " + " and ".join(kinds) + "; file names stay in the internal "
            "warehouse, but ask the FLS to name files without patient identifiers"]


def identifier_tokens_in(text: str) -> list[str]:
    """The kinds of identifier-like token (IDENTIFIER_TOKENS) found in text (a file name)."""
    return [kind for kind, p in IDENTIFIER_TOKENS.items()
            if re.search(p.replace("(?i)", ""), text, re.IGNORECASE if "(?i)" in p else 0)]


MIXED_FLS_SQL = f"""
    SELECT _fid, count(DISTINCT upper(_code_text({_q(FLS)}))) AS n,
           list(DISTINCT upper(_code_text({_q(FLS)})) ORDER BY upper(_code_text({_q(FLS)})))
             AS codes
    FROM _final WHERE _rule IS NULL GROUP BY _fid HAVING n > 1
"""
