"""Security supervision (安全监管): the audit trail, authorization policies and national cryptography."""
