"""`flsdb load`: land every submission file of the landing folder in the DuckDB ``raw`` schema.

The contract is docs/specification/submission-format.md and the table layout is docs/raw-schema.md.

How a file is landed
--------------------
1. Every file under the landing folder is a candidate (any extension), except paths with a
   component starting with ``_`` or ``.`` (so a file can be written as ``.name.part`` and renamed
   when complete): those are *skipped*, and each is listed and recorded with its reason (the
   top-level ``_reference/`` folder, the project's own, is exempt and not listed). Files are taken
   in sorted relative-path order. Links to folders are never followed; a link to a file outside
   the landing folder, to nothing or in a loop, an unreadable file and a folder that cannot be
   listed are *refused*, never read, and recorded with the reason (discover_all). Names are
   stored exactly as given (``source_file``) and in an unambiguous escaped form
   (``source_file_escaped``, _escaped); bytes that are not UTF-8 become ``\\xNN``.
2. The file is read once, while its size, modification time and inode stay the same (retried
   while it is still being written, then refused for this run); the loader works on those bytes
   only (its own staged copy), and re-checks the file just before committing: a file changed
   meanwhile is not committed, and is loaded by the next run (discovery.py). The bytes are
   hashed (sha256). Content already in ``raw.load_files`` (under any path) is skipped: loading
   the same bytes twice changes nothing. A changed file at the same path has a
   new sha256 and is loaded as a new version.
3. File-level checks, in Python on the bytes (cheap, whole-file): binary content (NUL bytes,
   zip/PDF magic), empty file, encoding, header. Encoding: a UTF-8 BOM -> ``utf-8-sig``; valid
   UTF-8 -> ``utf-8``; otherwise ``windows-1252`` only when that reading is certain
   (_decode_single_byte: not UTF-8 with stray bytes, plausible as Windows-1252 and implausible as
   MacRoman), and the text is transcoded to UTF-8 before DuckDB sees it; anything else (mixed
   UTF-8, MacRoman, UTF-16 or UTF-32 with or without a byte-order mark, uncertain) rejects the
   file naming the encoding (or the line and byte) and how to re-save it as UTF-8, so decoding
   never silently alters a value. Byte-order marks repeated at the start are all removed, with a
   warning. A header row of contract names split by semicolons, tabs or vertical bars rejects the
   file naming the separator and how to save comma-separated CSV (it is not guessed: a European
   export's decimal commas would be split wrongly). The header must be
   exactly the contract columns in any order (names are trimmed and compared case-insensitively;
   they are stored under the contract spelling): a missing, duplicated or unexpected column
   rejects the file, naming the columns.
4. DuckDB's own CSV reader parses the (UTF-8) text: ``read_csv`` with explicit columns (the
   header's order), every column VARCHAR, RFC 4180 quoting, ``strict_mode`` and
   ``store_rejects``, once per batch for all files with the same header order (small files whose
   record layout is unambiguous are joined into one CSV first: DuckDB's fixed cost per file
   would otherwise dominate 10,000 one-row files; staging.py). Only line ends outside quotes are
   line ends: mixed CRLF/LF are read as line ends (a warning counts them), CR-only (classic Mac)
   too; a line break inside a quoted value is data, kept exactly, with no warning; a carriage
   return on its own, outside quotes, in a file whose lines end with LF or CRLF is data, kept
   exactly in its value with a warning (_even_line_ends). No message ever shows the loader's
   private stand-in for such a CR, or an invisible character (decoding.visible). A row over 10 MB is a reject.
   Structural faults (a truncated or over-long line, a broken quoted value) come from DuckDB's
   ``reject_errors`` table and become ``wrong_column_count`` rejects.
5. The contract checks run as one vectorised SQL statement over the file's rows. A row is
   rejected once, under the first rule it breaks, in this order (the order of docs/specification/submission-format.md):
   wrong_column_count, missing_required_value, invalid_date, last_updated_after_load,
   invalid_nhs_number,
   unknown_fls_code, fracture_after_extract, fracture_before_2016, birth_after_fracture,
   age_over_110, invalid_fracture_site.
6. Records, rejects and the ``raw.load_files`` row are written in one transaction per file (a
   batch of more than 32 files commits consecutive files in groups of up to 500, to save an
   fsync per file): a crash leaves nothing of an uncommitted file, and the next run loads it
   completely. Nothing from a file is ever spliced into SQL text: values travel through the CSV
   reader, parameters and registered Arrow tables.
7. A second writer is refused with "Warehouse busy" (or waits up to ``$FLSDB_LOCK_TIMEOUT``
   seconds). Messages never repeat an NHS number, date or postcode from a file.

Line numbers
------------
``_line_number`` is the 1-based *physical* line of the file on which the row starts (the header
is line 1; a quoted value with an embedded newline makes a row span several lines; blank lines
are not rows but still count as lines). DuckDB's ``reject_errors.line`` is *not* that: it counts
records (a quoted embedded newline does not advance it), it can report the same line twice, and
DuckDB gives accepted rows no line number at all. So the loader works out the record layout of the
file itself (a vectorised numpy scan: a newline ends a record when an even number of double quotes
precede it), maps DuckDB's record numbers to physical lines, and gives the accepted rows, in
file order (DuckDB preserves insertion order), the line numbers of the records DuckDB did not
reject. If the scan and DuckDB disagree (unusual quoting, such as a stray quote inside an unquoted
value), the layout is recomputed with Python's csv module, which splits records the way DuckDB
does; if they still disagree the file is rejected rather than risk wrong line numbers. A quoted
value never closed before the end of the file (which DuckDB's strict mode drops silently) is
caught by the same bookkeeping and rejected as a broken row. In every case
rows read = rows accepted + rows rejected is asserted per file.

``raw_line`` is the physical line(s) of the row as read (after transcoding to UTF-8), CR removed.

Interpretations
---------------
- Extract date: a file's extract date is the date part of the latest *parseable* ``Last Updated``
  at or before the time of the load (UK time) among its structurally sound rows
  (``raw.load_files.file_extract_date``); a later one is a ``last_updated_after_load`` reject, so
  the extract date is never after the load.
- NHS numbers: whitespace of any kind and hyphens are removed; the rest must be 10 ASCII digits
  0-9 with a correct modulus-11 check digit and not one digit repeated
  (contract.nhs_number_problem).
- Coded answers (FLS code, 1.11) are read as staging reads them: whitespace of any kind trimmed
  and collapsed, documented wordings accepted (the coded-answer vars of dbt_project.yml). A row whose index
  fracture date is after it is rejected as ``fracture_after_extract``.
- Dates must be in one of the formats of var ``submission_date_formats`` (ISO ``YYYY-MM-DD`` or UK
  ``DD/MM/YYYY``), ``Last Updated`` of var ``submission_timestamp_formats``
  (``YYYY-MM-DDTHH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS``), written in full: two-digit day, month,
  hour, minute and second, four-digit year from 1000 (``contract.strict_format_regex``). Values
  are trimmed before parsing. A date that is not blank and cannot be parsed, or does not exist,
  rejects the row whichever date column it is in (docs/specification/submission-format.md); staging then checks
  the optional dates against the fracture date and warns.
- Age at the fracture is in completed years; over 110 means 111 or more.
- FLS codes are matched against ``fls_code`` of the registry after trimming (any whitespace),
  case-insensitively.
  A file whose rows carry several FLS codes is loaded row by row (each row checked against the
  registry under its own code), with a warning in the load summary.
- ``1.11 SiteFirstFrac`` is matched after trimming, case-insensitively.
- Empty cells are stored as NULL; other values are stored exactly as sent (untrimmed).
- Reject reasons name the offending value, except for identifiers (NHS number, date of birth),
  whose values stay only in ``raw_line`` so that a report showing reasons cannot leak them.
- Rows read counts data records after the header; blank lines are not records. A rejected file
  records 0 read, 0 accepted, 0 rejected (nothing in it was read as rows).
- ``loaded_at`` is UTC.

The package follows the pipeline
--------------------------------
- ``discovery``: which files of the landing folder are candidates, skipped or refused; reading
  each one consistently (read_stable, changed_since); names as stored and escaped.
- ``decoding``: binary and empty files, the encoding, the header, line ends, redaction.
- ``layout``: the physical lines of every record (numpy scan, csv module slow path).
- ``staging``: DuckDB's CSV reader into the ``_stage`` table, line maps, structural rejects.
- ``row_checks``: the contract checks as one vectorised SQL statement, and the warnings about
  identifier-like tokens and mixed FLS codes.
- ``warehouse``: opening the warehouse (one writer), the ``raw`` schema, the FLS registry.
- ``loader``: the load loop (load_landing) and the _Loader that checks and commits a batch.
- ``outcomes``: per-file outcomes, the run's summary, the records of files not loaded.
- ``recheck``: `flsdb recheck-rejects`.
- ``withdraw``: `flsdb withdraw` (raw.withdrawals); a loaded file the load no longer finds in the
  landing folder is reported by ``outcomes.note_missing_from_landing`` (never withdrawn by itself).
"""

from __future__ import annotations

from flsdb.ingest.discovery import NotRead, discover, discover_all
from flsdb.ingest.loader import load_landing
from flsdb.ingest.outcomes import FileOutcome, LoadResult
from flsdb.ingest.recheck import RecheckResult, recheck_rejects
from flsdb.ingest.warehouse import LoadError, WarehouseLockedError, ensure_schema

__all__ = [
    "FileOutcome", "LoadError", "LoadResult", "NotRead", "RecheckResult", "WarehouseLockedError",
    "discover", "discover_all", "ensure_schema", "load_landing", "recheck_rejects",
]
