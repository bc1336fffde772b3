"""A real Matrix Synapse homeserver for the test suite.

``harness`` starts and stops Synapse (installed by ``scripts/install-synapse.sh`` into
``.venv-synapse``) on a free loopback port; ``moderation`` is the Synapse module it loads,
which rejects, redacts or leaves messages by pattern and logs every decision.

``moderation`` runs inside the Synapse process only: it imports Synapse, which the project
venv does not have, so nothing in the test process imports it.
"""
