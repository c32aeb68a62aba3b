"""Model builders: one module per `conf/model/*.yaml`. Builders know nothing of tuning."""
