"""What a job knows about its sweep, the sweep summary and comparison tables, and the search objective."""
