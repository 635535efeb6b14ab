"""The service specs, by kind (see ``slipway_catalog.domain.service_specs``)."""
