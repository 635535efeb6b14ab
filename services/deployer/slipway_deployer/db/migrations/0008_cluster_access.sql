-- What the deployer needs to reach a self-managed cluster, from the catalog's ClusterChanged:
-- the access (api_url, token, CA) as the catalog sealed it with the transport key, bound to the
-- cluster's id (base64; opened only in memory when a runtime is made), what the cluster
-- advertises it runs, and its settings (e.g. ingress_class). NULL: not told (the local cluster,
-- or an event older than these fields).
SET LOCAL lock_timeout = '5s';

ALTER TABLE catalog_clusters
    ADD COLUMN credentials_sealed text,
    ADD COLUMN capabilities       jsonb,
    ADD COLUMN settings           jsonb;
