//! The PostgreSQL store: customers.

use super::*;

pub(super) fn customer_from_row(row: &PgRow) -> Try<Customer> {
    let customer: Customer = doc(row, "doc", "customer")?;
    let version: i64 = col(row, "version", "customer")?;
    let email: String = col(row, "email", "customer")?;
    if u64::try_from(version).ok() != Some(customer.version()) || email != customer.email().as_str()
    {
        return Err(corrupt("customer", "columns disagree with the document"));
    }
    let hash: Option<String> = col(row, "password_hash", "customer")?;
    Ok(customer.with_password_hash(hash.map(PasswordHash::from_phc)))
}

/// Writes `saved` (its version already bumped) over the row at version
/// `old`: false when the row is not at `old` (or gone).
pub(super) async fn update_customer(
    conn: &mut sqlx::PgConnection,
    saved: &Customer,
    old: i64,
) -> Try<bool> {
    let updated = sqlx::query(
        "UPDATE cw_customers SET version = $3, password_hash = $4, doc = $5, email = $6
         WHERE id = $1 AND version = $2",
    )
    .bind(saved.id().as_uuid())
    .bind(old)
    .bind(version_i64(saved.version())?)
    .bind(saved.password_hash().map(|h| h.as_phc().to_owned()))
    .bind(Json(to_json(saved)?))
    .bind(saved.email().as_str())
    .execute(&mut *conn)
    .await;
    match updated.map_err(Fail::from) {
        Ok(u) => Ok(u.rows_affected() == 1),
        Err(f) if constraint(&f).as_deref() == Some("cw_customers_email_key") => {
            Err(Error::AlreadyExists {
                what: "email",
                value: saved.email().to_string(),
            }
            .into())
        }
        Err(f) => Err(f),
    }
}

pub(super) fn account_token_from_row(row: &PgRow) -> Try<AccountToken> {
    let purpose: String = col(row, "purpose", "account token")?;
    let purpose = crate::customer::TokenPurpose::from_name(&purpose)
        .ok_or_else(|| corrupt("account token", "unknown purpose"))?;
    let attempts: i32 = col(row, "attempts", "account token")?;
    let new_email: Option<String> = col(row, "new_email", "account token")?;
    let new_email = new_email
        .map(|e| Email::new(&e).map_err(|_| corrupt("account token", "malformed email")))
        .transpose()?;
    Ok(AccountToken::from_parts(
        purpose,
        col(row, "hash", "account token")?,
        col(row, "expires_at", "account token")?,
        u32::try_from(attempts).map_err(|_| corrupt("account token", "negative attempts"))?,
        new_email,
        col(row, "password_mark", "account token")?,
    ))
}

pub(super) fn version_i64(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| Error::Overflow("version"))
}

#[async_trait]
impl CustomerStore for PgStore {
    async fn insert_customer(&self, customer: Customer) -> Result<()> {
        let version = version_i64(customer.version())?;
        retry!(self, async {
            let result = sqlx::query(
                "INSERT INTO cw_customers (id, email, version, password_hash, doc)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(customer.id().as_uuid())
            .bind(customer.email().as_str())
            .bind(version)
            .bind(customer.password_hash().map(|h| h.as_phc().to_owned()))
            .bind(Json(to_json(&customer)?))
            .execute(&self.pool())
            .await;
            match result.map_err(Fail::from) {
                Ok(_) => Ok(()),
                Err(f) if constraint(&f).as_deref() == Some("cw_customers_email_key") => {
                    Err(Error::AlreadyExists {
                        what: "email",
                        value: customer.email().to_string(),
                    }
                    .into())
                }
                Err(f) if sqlstate(&f).as_deref() == Some("23505") => Err(Error::AlreadyExists {
                    what: "customer",
                    value: customer.id().to_string(),
                }
                .into()),
                Err(f) => Err(f),
            }
        })
    }

    async fn save_customer(&self, customer: Customer) -> Result<Customer> {
        let old = version_i64(customer.version())?;
        let mut saved = customer.clone();
        saved.saved()?;
        retry!(self, async {
            let mut conn = self.pool().acquire().await?;
            if update_customer(&mut conn, &saved, old).await? {
                return Ok(saved.clone());
            }
            let exists = sqlx::query("SELECT 1 FROM cw_customers WHERE id = $1")
                .bind(saved.id().as_uuid())
                .fetch_optional(&mut *conn)
                .await?;
            Err(match exists {
                None => Error::not_found("customer", saved.id()),
                Some(_) => Error::Conflict("customer"),
            }
            .into())
        })
    }

    async fn issue_account_token(
        &self,
        holder: TokenHolder<'_>,
        token: AccountToken,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>> {
        // For an email: one statement either way — the account's id and
        // password mark if it exists, the decoy's and the empty password's
        // otherwise — and the same insert. For an account: only if it exists.
        let (sql, lookup, decoy) = match holder {
            TokenHolder::Email { email, decoy } => (
                "INSERT INTO cw_account_tokens
                    (customer_id, purpose, hash, expires_at, new_email, password_mark, issued_at)
                 SELECT coalesce(c.id, $2), $3, $4, $5, $6,
                        encode(sha256(convert_to(coalesce(c.password_hash, $8), 'UTF8')), 'hex'), $7
                 FROM (SELECT 1) AS one
                 LEFT JOIN cw_customers c ON c.email = $1 AND c.doc->>'kind' = 'registered'
                 RETURNING customer_id",
                email.as_str().to_owned(),
                decoy,
            ),
            TokenHolder::Customer(id) => (
                "INSERT INTO cw_account_tokens
                    (customer_id, purpose, hash, expires_at, new_email, password_mark, issued_at)
                 SELECT c.id, $3, $4, $5, $6,
                        encode(sha256(convert_to(coalesce(c.password_hash, $8), 'UTF8')), 'hex'), $7
                 FROM cw_customers c WHERE c.id::text = $1 AND c.id <> $2
                 RETURNING customer_id",
                id.as_uuid().to_string(),
                // No account has the nil id.
                CustomerId::from_uuid(Uuid::nil()),
            ),
        };
        let id: Option<Uuid> = retry!(self, async {
            Ok(sqlx::query_scalar(sql)
                .bind(&lookup)
                .bind(decoy.as_uuid())
                .bind(token.purpose().name())
                .bind(token.hash())
                .bind(token.expires_at())
                .bind(token.new_email().map(|e| e.as_str().to_owned()))
                .bind(now)
                .bind(crate::customer::DECOY_PHC)
                .fetch_optional(&self.pool())
                .await?)
        })?;
        match (id, holder) {
            (Some(id), _) if id != decoy.as_uuid() => Ok(Some(CustomerId::from_uuid(id))),
            (_, TokenHolder::Customer(id)) => Err(Error::not_found("customer", id)),
            _ => Ok(None),
        }
    }

    async fn use_account_token(
        &self,
        customer: CustomerId,
        presented: &str,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Customer> {
        retry!(
            self,
            self.use_account_token_try(customer, presented, change, now)
        )
    }

    async fn prune_account_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        retry!(self, async {
            // Expired tokens, and those a newer one of the same account and
            // purpose replaced.
            let done = sqlx::query(
                "DELETE FROM cw_account_tokens t
                 WHERE t.expires_at <= $1
                    OR EXISTS (SELECT 1 FROM cw_account_tokens n
                               WHERE n.customer_id = t.customer_id AND n.purpose = t.purpose
                                 AND n.seq > t.seq)",
            )
            .bind(now)
            .execute(&self.pool())
            .await?;
            Ok(done.rows_affected())
        })
    }

    async fn customer(&self, id: CustomerId) -> Result<Customer> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_customers WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?
                .ok_or_else(|| Error::not_found("customer", id))?;
            customer_from_row(&row)
        })
    }

    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>> {
        retry!(self, async {
            let row = sqlx::query("SELECT * FROM cw_customers WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&self.pool())
                .await?;
            row.as_ref().map(customer_from_row).transpose()
        })
    }

    async fn insert_group(&self, group: CustomerGroup) -> Result<()> {
        retry!(self, async {
            let result = sqlx::query(
                "INSERT INTO cw_customer_groups (id, name_key, doc) VALUES ($1, $2, $3)",
            )
            .bind(group.id().as_uuid())
            .bind(group.name().to_lowercase())
            .bind(Json(to_json(&group)?))
            .execute(&self.pool())
            .await;
            result
                .map(|_| ())
                .map_err(|e| already_exists(e.into(), "customer group", group.name().to_owned()))
        })
    }

    async fn erase_customer(
        &self,
        id: CustomerId,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Erasure> {
        retry!(self, self.erase_customer_try(id, now))
    }

    async fn find_customers(
        &self,
        query: &crate::customer::CustomerQuery,
    ) -> Result<Vec<Customer>> {
        // The text as a LIKE pattern, its own wildcards escaped.
        let pattern = query.needle().map(|n| {
            let escaped = n
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let limit = i64::try_from(query.limit).map_err(|_| Error::Overflow("limit"))?;
        retry!(self, async {
            let rows = sqlx::query(
                "SELECT * FROM cw_customers
                 WHERE ($1::uuid IS NULL OR id > $1)
                   AND ($2::text IS NULL OR email LIKE $2 ESCAPE '\\'
                        OR lower(doc->>'name') LIKE $2 ESCAPE '\\')
                   AND ($3::text IS NULL OR doc->'groups' ? $3)
                 ORDER BY id LIMIT $4",
            )
            .bind(query.after.map(|a| a.as_uuid()))
            .bind(&pattern)
            .bind(query.group.map(|g| g.as_uuid().to_string()))
            .bind(limit)
            .fetch_all(&self.pool())
            .await?;
            rows.iter().map(customer_from_row).collect()
        })
    }

    async fn groups(&self) -> Result<Vec<CustomerGroup>> {
        retry!(
            self,
            self.all_docs(
                "SELECT doc FROM cw_customer_groups ORDER BY id",
                "customer group"
            )
        )
    }
}
