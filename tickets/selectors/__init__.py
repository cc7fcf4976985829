"""Every read of tickets, one module per area. Customer scoping lives here and nowhere else."""
