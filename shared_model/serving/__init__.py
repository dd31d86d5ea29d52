"""What both apps need to serve the model, knowing no web framework: settings, error items,
request IDs, metrics, load shedding, the API-key check, the feature-service clients, and the
served model with its micro-batcher."""
