"""One module per dataset family: each a thin `Source` over `lmrec.data.io` that says which files and which columns."""
