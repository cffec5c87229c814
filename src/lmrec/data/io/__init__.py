"""Generic typed readers for delimited and JSON-lines files, row validation and checksums: the errors that name
`file:line: column`."""
