"""Flask glue around shared_model: the app factory, the routes and the error mapping."""
