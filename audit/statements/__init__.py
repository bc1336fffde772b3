"""Statements of reasons (DSA Art. 17 and 24(5)) cross-checked against what an audit measured.

Modules, from the bottom up: :mod:`~audit.statements.schema` (field names and enumerations of
the Transparency Database), :mod:`~audit.statements.dump` (the daily dumps' layout),
:mod:`~audit.statements.rules` (the submission rules), :mod:`~audit.statements.load` and
:mod:`~audit.statements.statement` (reading files), :mod:`~audit.statements.observed` (what the
audit saw of each probe), :mod:`~audit.statements.match` (statements to probes) and
:mod:`~audit.statements.check` (the consistency findings and their rates). The schema and the
dump writer import nothing of the tool, so the reference sandbox can use them.
"""
