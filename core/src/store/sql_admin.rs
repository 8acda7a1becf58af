//! Admin queries: migrations, tenants and channels from configuration, API tokens.

macro_rules! impl_admin_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AdminStore for $store {
            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                Self::MIGRATOR.run(self.writer()).await?;
                Ok(())
            }

            async fn migrations_applied(&self) -> $crate::store::StoreResult<bool> {
                let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                    .fetch_all(self.reader())
                    .await
                {
                    Ok(v) => v,
                    // No bookkeeping table yet: nothing is applied.
                    Err(sqlx::Error::Database(_)) => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                Ok(Self::MIGRATOR
                    .iter()
                    .all(|m| applied.contains(&m.version)))
            }

            async fn sync_tenants_and_channels(
                &self,
                tenants: &[$crate::store::TenantRecord],
                channels: &[$crate::store::ChannelRecord],
            ) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                for t in tenants {
                    sqlx::query(
                        "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                    )
                    .bind(&t.id)
                    .bind(t.name.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                for c in channels {
                    // A channel id is bound to its tenant for life: moving it would move
                    // conversations between tenants.
                    let owner: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM channels WHERE id = $1")
                        .bind(&c.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(owner) = owner
                        && owner != c.tenant_id
                    {
                        return Err($crate::store::StoreError::Refused($crate::store::Refusal::ChannelTenantChanged {
                            channel: c.id.clone(),
                            owner,
                            tenant: c.tenant_id.clone(),
                        }));
                    }
                    sqlx::query(
                        "INSERT INTO channels (id, tenant_id, kind, address, status, updated_at) VALUES ($1, $2, $3, $4, 'active', $5)
                         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, address = excluded.address, updated_at = excluded.updated_at,
                             status = CASE WHEN channels.status = 'removed' THEN 'active' ELSE channels.status END",
                    )
                    .bind(&c.id)
                    .bind(&c.tenant_id)
                    .bind(&c.kind)
                    .bind(c.address.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn retire_unconfigured_channels(&self, configured: &[String]) -> $crate::store::StoreResult<u64> {
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE channels SET status = 'removed', updated_at = ");
                q.push_bind($crate::domain::model::now_millis());
                q.push(" WHERE status <> 'removed'");
                if !configured.is_empty() {
                    q.push(" AND id NOT IN ");
                    super::sql_common::push_list(&mut q, configured.iter().cloned());
                }
                Ok(q.build().execute(self.writer()).await?.rows_affected())
            }

            async fn create_token(&self, token: &$crate::store::NewToken) -> $crate::store::StoreResult<()> {
                let exists: Option<String> = sqlx::query_scalar("SELECT id FROM tenants WHERE id = $1")
                    .bind(&token.tenant_id)
                    .fetch_optional(self.reader())
                    .await?;
                if exists.is_none() {
                    return Err($crate::store::StoreError::Refused($crate::store::Refusal::UnknownTenant {
                        tenant: token.tenant_id.clone(),
                    }));
                }
                sqlx::query(
                    "INSERT INTO api_tokens (id, tenant_id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&token.id)
                .bind(&token.tenant_id)
                .bind(&token.name)
                .bind(token.role.as_str())
                .bind(&token.hash)
                .bind($crate::domain::model::now_millis())
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn revoke_token(&self, tenant: &str, id_or_name: &str) -> $crate::store::StoreResult<u64> {
                let r = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND (id = $3 OR name = $3) AND revoked_at IS NULL",
                )
                .bind($crate::domain::model::now_millis())
                .bind(tenant.to_string())
                .bind(id_or_name.to_string())
                .execute(self.writer())
                .await?;
                Ok(r.rows_affected())
            }

            async fn find_token(&self, hash: &str) -> $crate::store::StoreResult<Option<$crate::store::TokenRecord>> {
                let row: Option<(String, String, String, String)> = sqlx::query_as(
                    "SELECT id, tenant_id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                )
                .bind(hash.to_string())
                .fetch_optional(self.reader())
                .await?;
                row.map(|(id, tenant_id, name, role)| {
                    let role = $crate::store::Role::parse(&role)
                        .ok_or_else(|| $crate::store::StoreError::Corrupt(format!("token role {role:?}")))?;
                    Ok($crate::store::TokenRecord { id, tenant_id, name, role })
                })
                .transpose()
            }

            async fn set_channel_status(&self, channel: &str, status: &str, error: Option<&str>) -> $crate::store::StoreResult<()> {
                let now = $crate::domain::model::now_millis();
                let mut tx = self.writer().begin().await?;
                let tenant: Option<String> = sqlx::query_scalar(
                    "UPDATE channels SET status = $1, last_error = $2, updated_at = $3 WHERE id = $4 RETURNING tenant_id",
                )
                .bind(status.to_string())
                .bind(error.map(str::to_string))
                .bind(now)
                .bind(channel.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let tenant = tenant.ok_or($crate::store::StoreError::NotFound)?;
                Self::insert_event(
                    &mut tx,
                    &tenant,
                    "channel.updated",
                    serde_json::json!({ "channel_id": channel, "status": status, "last_error": error }),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_admin_store;
