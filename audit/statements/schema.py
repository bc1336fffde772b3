"""The statement-of-reasons schema of the DSA Transparency Database, as data.

Field names, enumeration values and limits follow the database's own sources: the submission
rules (``app/Http/Requests/StatementStoreRequest.php``), the enumerations (``app/Models/
Statement.php``) and the API documentation (``resources/markdown/api-documentation.md``) of the
``digital-services-act/transparency-database`` repository, and the July 2025 (API v2) schema
change announced in ``resources/markdown/migration-to-api-v-two.md``. Categories of both schema
versions are accepted, since dumps span both; see docs/statements.md for what is modelled.

This module is the bottom of :mod:`audit.statements`: it imports nothing of the tool but the
standard library, so the reference sandbox can emit statements with it.
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT_TYPES",
    "ARRAY_FIELDS",
    "AUTOMATED_DECISIONS",
    "AUTOMATED_DETECTIONS",
    "CATEGORIES",
    "CATEGORY_ALIASES",
    "CONTENT_TYPES",
    "DATE_FIELDS",
    "DECISION_ACCOUNTS",
    "DECISION_GROUNDS",
    "DECISION_MONETARIES",
    "DECISION_PROVISIONS",
    "DECISION_VISIBILITIES",
    "DUMP_FULL_COLUMNS",
    "DUMP_LIGHT_COLUMNS",
    "EEA_COUNTRIES",
    "MAX_LENGTHS",
    "NOTICE_SOURCES",
    "REMOVING_VISIBILITIES",
    "SOURCE_TYPES",
    "YES_NO",
    "category_value",
    "same_category",
]

DECISION_VISIBILITIES = (
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
)
# what an observer sees as "gone": the post no longer shown to anyone
REMOVING_VISIBILITIES = frozenset(
    {"DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED"}
)
DECISION_MONETARIES = (
    "DECISION_MONETARY_SUSPENSION",
    "DECISION_MONETARY_TERMINATION",
    "DECISION_MONETARY_OTHER",
)
DECISION_PROVISIONS = (
    "DECISION_PROVISION_PARTIAL_SUSPENSION",
    "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION",
    "DECISION_PROVISION_TOTAL_TERMINATION",
)
DECISION_ACCOUNTS = ("DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED")
ACCOUNT_TYPES = ("ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE")
DECISION_GROUNDS = ("DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT")
CONTENT_TYPES = (
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
    "CONTENT_TYPE_OTHER",
)
_V1_CATEGORIES = (
    "ANIMAL_WELFARE",
    "DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "ILLEGAL_OR_HARMFUL_SPEECH",
    "INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "NON_CONSENSUAL_BEHAVIOUR",
    "PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
    "PROTECTION_OF_MINORS",
    "RISK_FOR_PUBLIC_SECURITY",
    "SCAMS_AND_FRAUD",
    "SELF_HARM",
    "SCOPE_OF_PLATFORM_SERVICE",
    "UNSAFE_AND_ILLEGAL_PRODUCTS",
    "VIOLENCE",
)
_V2_ADDED = (
    "CONSUMER_INFORMATION",
    "CYBER_VIOLENCE",
    "CYBER_VIOLENCE_AGAINST_WOMEN",
    "NOT_SPECIFIED_NOTICE",
    "OTHER_VIOLATION_TC",
    "UNSAFE_AND_PROHIBITED_PRODUCTS",
)
CATEGORIES = tuple(f"STATEMENT_CATEGORY_{c}" for c in (*_V1_CATEGORIES, *_V2_ADDED))
# v1 names renamed in v2: one category for the cross-check
CATEGORY_ALIASES = {
    "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS": (
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
    ),
    "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
}
SOURCE_TYPES = (
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
)
NOTICE_SOURCES = frozenset(SOURCE_TYPES) - {"SOURCE_VOLUNTARY"}
YES_NO = ("Yes", "No")
AUTOMATED_DETECTIONS = YES_NO
AUTOMATED_DECISIONS = (
    "AUTOMATED_DECISION_FULLY",
    "AUTOMATED_DECISION_PARTIALLY",
    "AUTOMATED_DECISION_NOT_AUTOMATED",
)
# EU member states, then Iceland, Liechtenstein and Norway (EEA)
_EU = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU")
_EU_2 = ("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
EEA_COUNTRIES = frozenset((*_EU, *_EU_2, "IS", "LI", "NO"))
MAX_LENGTHS = {
    "decision_visibility_other": 500,
    "decision_monetary_other": 500,
    "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000,
    "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000,
    "content_type_other": 500,
    "category_specification_other": 500,
    "decision_facts": 5000,
    "source_identity": 500,
    "puid": 500,
}
ARRAY_FIELDS = frozenset(
    {
        "decision_visibility",
        "content_type",
        "category_addition",
        "category_specification",
        "territorial_scope",
    }
)
DATE_FIELDS = (
    "content_date",
    "application_date",
    "end_date_visibility_restriction",
    "end_date_monetary_restriction",
    "end_date_service_restriction",
    "end_date_account_restriction",
)

# The daily dumps' CSV columns (the "full" variant; "light" drops the free-text fields). A dump
# names the puid ``platform_uid``; the loader reads ``puid`` as the same column.
DUMP_FULL_COLUMNS = (
    "uuid",
    "decision_visibility",
    "decision_visibility_other",
    "end_date_visibility_restriction",
    "decision_monetary",
    "decision_monetary_other",
    "end_date_monetary_restriction",
    "decision_provision",
    "end_date_service_restriction",
    "decision_account",
    "end_date_account_restriction",
    "account_type",
    "decision_ground",
    "decision_ground_reference_url",
    "illegal_content_legal_ground",
    "illegal_content_explanation",
    "incompatible_content_ground",
    "incompatible_content_explanation",
    "incompatible_content_illegal",
    "category",
    "category_addition",
    "category_specification",
    "category_specification_other",
    "content_type",
    "content_type_other",
    "content_language",
    "content_date",
    "territorial_scope",
    "application_date",
    "decision_facts",
    "source_type",
    "source_identity",
    "automated_detection",
    "automated_decision",
    "platform_name",
    "platform_uid",
    "created_at",
)
_FREE_TEXT = frozenset(
    {
        "decision_visibility_other",
        "decision_monetary_other",
        "decision_ground_reference_url",
        "illegal_content_legal_ground",
        "illegal_content_explanation",
        "incompatible_content_ground",
        "incompatible_content_explanation",
        "category_specification_other",
        "content_type_other",
        "decision_facts",
        "source_identity",
    }
)
DUMP_LIGHT_COLUMNS = tuple(c for c in DUMP_FULL_COLUMNS if c not in _FREE_TEXT)


def category_value(dsa_category: str) -> str:
    """A pack's DSA category (``SCAMS_AND_FRAUD``) as the database spells it."""
    name = (
        dsa_category
        if dsa_category.startswith("STATEMENT_CATEGORY_")
        else (f"STATEMENT_CATEGORY_{dsa_category}")
    )
    return CATEGORY_ALIASES.get(name, name)


def same_category(a: str, b: str) -> bool:
    """The same category, counting a v1 name and its v2 renaming as one."""
    return category_value(a) == category_value(b)
