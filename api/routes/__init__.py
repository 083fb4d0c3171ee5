"""HTTP routers, one module per area; each exports `router`."""
