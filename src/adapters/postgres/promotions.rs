//! The PostgreSQL store: promotions.

use super::*;

/// Upserts a promotion and bumps the pricing version, in one statement.
pub(super) const SAVE_PROMOTION: &str = "WITH saved AS (
         INSERT INTO cw_promotions (id, doc) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc)
     UPDATE cw_pricing_version SET version = version + 1";

/// Upserts a price list and bumps the pricing version, in one statement.
pub(super) const SAVE_PRICE_LIST: &str = "WITH saved AS (
         INSERT INTO cw_price_lists (id, doc) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc)
     UPDATE cw_pricing_version SET version = version + 1";

impl PgStore {
    pub(super) async fn save_pricing_doc<T: Serialize>(
        &self,
        sql: &'static str,
        id: Uuid,
        value: &T,
    ) -> Try<()> {
        sqlx::query(sql)
            .bind(id)
            .bind(Json(to_json(value)?))
            .execute(&self.pool())
            .await?;
        Ok(())
    }
}

#[async_trait]
impl PromotionStore for PgStore {
    async fn save_promotion(&self, promotion: Promotion) -> Result<()> {
        retry!(
            self,
            self.save_pricing_doc(SAVE_PROMOTION, promotion.id.as_uuid(), &promotion)
        )
    }

    async fn promotion(&self, id: PromotionId) -> Result<Promotion> {
        retry!(self, async {
            let row = sqlx::query("SELECT doc FROM cw_promotions WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool())
                .await?;
            match row {
                Some(r) => doc(&r, "doc", "promotion"),
                None => Err(Error::not_found("promotion", id).into()),
            }
        })
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_promotions ORDER BY id", "promotion")
        )
    }

    async fn save_price_list(&self, list: PriceList) -> Result<()> {
        retry!(
            self,
            self.save_pricing_doc(SAVE_PRICE_LIST, list.id.as_uuid(), &list)
        )
    }

    async fn price_lists(&self) -> Result<Vec<PriceList>> {
        retry!(
            self,
            self.all_docs("SELECT doc FROM cw_price_lists ORDER BY id", "price list")
        )
    }

    async fn insert_coupons(&self, coupons: &[Coupon]) -> Result<()> {
        let mut fresh = std::collections::HashSet::with_capacity(coupons.len());
        if let Some(twice) = coupons.iter().find(|c| !fresh.insert(c.code.as_str())) {
            return Err(Error::AlreadyExists {
                what: "coupon code",
                value: twice.code.clone(),
            });
        }
        let codes: Vec<&str> = coupons.iter().map(|c| c.code.as_str()).collect();
        let promotions = uuids(coupons, |c| c.promotion_id.as_uuid());
        let max_uses = coupons
            .iter()
            .map(|c| c.max_uses.map(i64::try_from).transpose())
            .collect::<std::result::Result<Vec<Option<i64>>, _>>()
            .map_err(|_| Error::Overflow("coupon max_uses"))?;
        let mut more = Vec::with_capacity(coupons.len());
        for c in coupons {
            c.validate()?;
            // An array literal of UUIDs (hex and dashes only), one per coupon.
            let ids: Vec<String> = c.more_promotions.iter().map(|p| p.to_string()).collect();
            more.push(format!("{{{}}}", ids.join(",")));
        }
        retry!(self, async {
            // The further promotions have no foreign key (an array): the
            // statement inserts nothing and names one when any is missing.
            let result = sqlx::query(
                "WITH input AS (
                     SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[])
                         AS t(code, promotion_id, max_uses, more)),
                 missing AS (
                     SELECT m FROM input, unnest(input.more::uuid[]) AS m
                     WHERE NOT EXISTS (SELECT 1 FROM cw_promotions p WHERE p.id = m)
                     LIMIT 1),
                 ins AS (
                     INSERT INTO cw_coupons (code, promotion_id, max_uses, more_promotions)
                     SELECT code, promotion_id, max_uses, more::uuid[] FROM input
                     WHERE NOT EXISTS (SELECT 1 FROM missing)
                     RETURNING 1)
                 SELECT (SELECT m FROM missing) AS missing, (SELECT count(*) FROM ins) AS n",
            )
            .bind(&codes)
            .bind(&promotions)
            .bind(&max_uses)
            .bind(&more)
            .fetch_one(&self.pool())
            .await;
            match result.map_err(Fail::from) {
                Ok(row) => match col::<Option<uuid::Uuid>>(&row, "missing", "coupon")? {
                    Some(id) => {
                        Err(Error::not_found("promotion", PromotionId::from_uuid(id)).into())
                    }
                    None => Ok(()),
                },
                Err(f) if sqlstate(&f).as_deref() == Some("23503") => {
                    let id = coupons
                        .first()
                        .map(|c| c.promotion_id.to_string())
                        .unwrap_or_default();
                    Err(Error::NotFound {
                        entity: "promotion",
                        id,
                    }
                    .into())
                }
                Err(f) if sqlstate(&f).as_deref() == Some("23505") => {
                    // Name the code (the caller's value), never the database's text.
                    let taken: Option<String> = sqlx::query_scalar(
                        "SELECT code FROM cw_coupons WHERE code = ANY($1) ORDER BY code LIMIT 1",
                    )
                    .bind(&codes)
                    .fetch_optional(&self.pool())
                    .await?;
                    Err(Error::AlreadyExists {
                        what: "coupon code",
                        value: taken.unwrap_or_default(),
                    }
                    .into())
                }
                Err(f) => Err(f),
            }
        })
    }

    async fn pricing_inputs(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Result<PricingInputs> {
        retry!(self, self.pricing_inputs_try(variants, codes))
    }

    async fn cart_for_pricing(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Result<(Cart, PricingInputs)> {
        retry!(self, self.cart_for_pricing_try(cart_id, extra))
    }
}

impl PgStore {
    /// The cart and its pricing inputs in one statement: the cart's row
    /// (kind 3) beside the rows [`Self::pricing_inputs_try`] reads, for the
    /// variants and codes the cart's document names, each variant with the
    /// locations that stock it (commit 1's hint when there is one).
    pub(super) async fn cart_for_pricing_try(
        &self,
        cart_id: CartId,
        extra: &[VariantId],
    ) -> Try<(Cart, PricingInputs)> {
        let rows = sqlx::query(CHECKOUT_READ)
            .bind(cart_id.as_uuid())
            // Every lookup in the statement is by key through
            // `= ANY (array)`, and no estimate depends on a parameter's
            // value: the server keeps one generic plan. With `IN (… UNION unnest($2))`, the estimate
            // followed the array's length, so each call was planned again
            // (0.5 ms, more than running it; BENCHMARKS.md, session 8).
            .bind(uuids(extra, |v| v.as_uuid()))
            .fetch_all(&self.pool())
            .await?;
        let mut cart = None;
        let mut inputs = Vec::with_capacity(rows.len());
        for row in rows {
            if col::<i32>(&row, "kind", "pricing inputs")? == 3 {
                cart = Some(cart_from_row(&row)?);
            } else {
                inputs.push(row);
            }
        }
        let cart = cart.ok_or_else(|| Error::not_found("cart", cart_id))?;
        Ok((cart, pricing_inputs_from_rows(inputs)?))
    }

    /// Entries, coupons and the version in one statement: rows of three
    /// kinds, told apart by `kind`.
    pub(super) async fn pricing_inputs_try(
        &self,
        variants: &[VariantId],
        codes: &[String],
    ) -> Try<PricingInputs> {
        let rows = sqlx::query(
            "SELECT 0 AS kind, v.doc AS variant, p.summary, NULL::text AS code,
                    NULL::uuid AS promotion_id, NULL::bigint AS max_uses,
                    NULL::uuid[] AS more_promotions, NULL::bigint AS version,
                    NULL::uuid[] AS stock_locations
             FROM cw_variants v JOIN cw_products p ON p.id = v.product_id
             WHERE v.id = ANY($1)
             UNION ALL
             SELECT 1, NULL, NULL, code, promotion_id, max_uses, more_promotions, NULL, NULL
             FROM cw_coupons WHERE code = ANY($2)
             UNION ALL
             SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, version, NULL FROM cw_pricing_version",
        )
        .bind(uuids(variants, |v| v.as_uuid()))
        .bind(codes)
        .fetch_all(&self.pool())
        .await?;
        pricing_inputs_from_rows(rows)
    }
}

pub(super) fn coupon_from_row(r: &PgRow) -> Try<Coupon> {
    let max_uses: Option<i64> = col(r, "max_uses", "coupon")?;
    Ok(Coupon {
        code: col(r, "code", "coupon")?,
        promotion_id: PromotionId::from_uuid(col(r, "promotion_id", "coupon")?),
        max_uses: max_uses
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("coupon", "negative max_uses"))?,
        more_promotions: col::<Vec<uuid::Uuid>>(r, "more_promotions", "coupon")?
            .into_iter()
            .map(PromotionId::from_uuid)
            .collect(),
    })
}
