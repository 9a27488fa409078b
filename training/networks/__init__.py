"""Networks built from scratch in this package, as the course notes describe them."""
