"""What the API does, without FastAPI: queries, filters, boards. Routes stay thin."""
