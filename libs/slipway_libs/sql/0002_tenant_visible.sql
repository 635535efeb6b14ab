-- Row-level tenant isolation (see slipway_libs.tenancy): a request of a user or an API token
-- binds its organization as `slipway.organization_id` for its transaction; a table whose policy
-- uses tenant_visible(organization_id) then shows and accepts only that organization's rows.
-- Nothing bound (the platform's own consumers, workers, relays): every row.
CREATE FUNCTION tenant_visible(org uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('slipway.organization_id', true), ''), org::text)
           = org::text
$$;
