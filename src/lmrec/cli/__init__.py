"""Entry points (`lmrec-train`, `lmrec-eval`, `lmrec-export`, `lmrec-download`): each reads setup -> work -> record."""
