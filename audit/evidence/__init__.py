"""The evidence: what the run recorded and what a regulator can check without trusting the tool.

* :mod:`audit.evidence.ledger` — the hash-chained ledger of every exchange, the run's records
  as files, and the check that every measurement rests on a recorded answer;
* :mod:`audit.evidence.rederive` — the records re-derived from the ledger's answers with the
  readers the run used (observations, outcomes, clocks, probe texts);
* :mod:`audit.evidence.keys` and :mod:`audit.evidence.manifest` — the workspace's Ed25519 key
  and the signed manifest of a bundle;
* :mod:`audit.evidence.archive` — bounded reading and writing of bundle archives;
* :mod:`audit.evidence.bundle` — export, verify and the scorecard rebuilt from a bundle.

Modules import only downwards (ledger and keys first, bundle last), and nothing here is
imported by the adapters: they get an evidence sink (:class:`audit.adapters.base.EvidenceSink`).
This package's ``__init__`` imports nothing, so importing one module costs only that module.
"""
