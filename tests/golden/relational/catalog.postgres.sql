WITH c AS (
  SELECT
    CAST(contact_id AS VARCHAR) AS cid,
    "email" AS c_email,
    "subscribed" AS c_subscribed,
    "tags" AS c_tags,
    "first_name" AS c_first_name
  FROM contacts
), orders_n AS (
  SELECT
    CAST(contact_id AS VARCHAR) AS contact_id,
    CAST(ordered_at AS TIMESTAMPTZ) AS ordered_at,
    CAST(amount AS DOUBLE PRECISION) AS amount,
    "category",
    CAST(rating AS DOUBLE PRECISION) AS rating
  FROM orders
), o AS (
  SELECT
    contact_id AS cid,
    SUM(rating) AS o0,
    COUNT(rating) AS o1,
    MIN(ordered_at) AS o2,
    MAX(ordered_at) AS o3,
    COUNT(*) AS o4,
    CAST(ROUND(CAST(SUM(COALESCE(amount, 0)) AS DECIMAL), 6) AS DOUBLE PRECISION) AS o5,
    COUNT(amount) AS o6,
    MAX(rating) AS o7,
    COUNT(
      DISTINCT CASE
        WHEN ordered_at > CAST('2025-11-01T23:00:00+00:00' AS TIMESTAMPTZ)
        AND CAST(category AS VARCHAR) <> ''
        THEN category
      END
    ) AS o8,
    COUNT(
      CASE WHEN ordered_at > CAST('2025-01-30T23:00:00+00:00' AS TIMESTAMPTZ) THEN 1 END
    ) AS o9,
    CAST(ROUND(
      CAST(SUM(
        CASE
          WHEN ordered_at > CAST('2025-01-30T23:00:00+00:00' AS TIMESTAMPTZ)
          THEN COALESCE(amount, 0)
          ELSE 0
        END
      ) AS DECIMAL),
      6
    ) AS DOUBLE PRECISION) AS o10,
    COUNT(
      CASE WHEN ordered_at > CAST('2026-01-23T23:00:00+00:00' AS TIMESTAMPTZ) THEN 1 END
    ) AS o11,
    COUNT(
      CASE
        WHEN ordered_at > CAST('2026-01-16T23:00:00+00:00' AS TIMESTAMPTZ)
        AND ordered_at <= CAST('2026-01-23T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS o12,
    CAST(ROUND(
      CAST(SUM(
        CASE
          WHEN ordered_at > CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ)
          THEN COALESCE(amount, 0)
          ELSE 0
        END
      ) AS DECIMAL),
      6
    ) AS DOUBLE PRECISION) AS o13,
    CAST(ROUND(
      CAST(SUM(
        CASE
          WHEN ordered_at > CAST('2025-12-01T23:00:00+00:00' AS TIMESTAMPTZ)
          AND ordered_at <= CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ)
          THEN COALESCE(amount, 0)
          ELSE 0
        END
      ) AS DECIMAL),
      6
    ) AS DOUBLE PRECISION) AS o14,
    COUNT(
      CASE WHEN ordered_at > CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ) THEN 1 END
    ) AS o15,
    COUNT(
      CASE WHEN ordered_at > CAST('2026-01-29T23:00:00+00:00' AS TIMESTAMPTZ) THEN 1 END
    ) AS o16,
    COUNT(
      CASE
        WHEN ordered_at > CAST('2025-10-02T22:00:00+00:00' AS TIMESTAMPTZ)
        AND ordered_at <= CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS o17,
    CAST(ROUND(
      CAST(SUM(
        CASE
          WHEN ordered_at > CAST('2026-01-16T23:00:00+00:00' AS TIMESTAMPTZ)
          AND ordered_at <= CAST('2026-01-23T23:00:00+00:00' AS TIMESTAMPTZ)
          THEN COALESCE(amount, 0)
          ELSE 0
        END
      ) AS DECIMAL),
      6
    ) AS DOUBLE PRECISION) AS o18,
    COUNT(DISTINCT CASE WHEN CAST(category AS VARCHAR) <> '' THEN category END) AS o19,
    COUNT(
      DISTINCT CASE
        WHEN ordered_at > CAST('2025-12-01T23:00:00+00:00' AS TIMESTAMPTZ)
        AND CAST(category AS VARCHAR) <> ''
        THEN category
      END
    ) AS o20,
    COUNT(
      CASE
        WHEN ordered_at > CAST('2026-01-28T23:00:00+00:00' AS TIMESTAMPTZ)
        AND ordered_at <= CAST('2026-01-29T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS o21
  FROM orders_n
  WHERE
    ordered_at <= CAST('2026-01-30T23:00:00+00:00' AS TIMESTAMPTZ)
  GROUP BY
    contact_id
), events_n AS (
  SELECT
    CAST(contact_id AS VARCHAR) AS contact_id,
    CAST(at AS TIMESTAMPTZ) AS at,
    CAST(campaign_id AS VARCHAR) AS campaign_id,
    CAST(event AS VARCHAR) AS event
  FROM events
), lc AS (
  SELECT
    campaign_id
  FROM (
    SELECT
      campaign_id,
      MIN(at) AS first_at
    FROM events_n
    WHERE
      (
        at <= CAST('2026-01-30T23:00:00+00:00' AS TIMESTAMPTZ)
        AND contact_id IN (
          SELECT
            cid
          FROM c
        )
      )
      AND NOT campaign_id IS NULL
      AND (
        event = 'sent'
        OR NOT EXISTS(
          SELECT
            1
          FROM events_n
          WHERE
            (
              at <= CAST('2026-01-30T23:00:00+00:00' AS TIMESTAMPTZ)
              AND contact_id IN (
                SELECT
                  cid
                FROM c
              )
            )
            AND event = 'sent'
        )
      )
    GROUP BY
      campaign_id
  ) AS f
  ORDER BY
    first_at DESC NULLS LAST,
    campaign_id
  LIMIT 1
), e AS (
  SELECT
    contact_id AS cid,
    MAX(CASE WHEN event = 'open' THEN at END) AS e0,
    MAX(CASE WHEN event = 'click' THEN at END) AS e1,
    COUNT(CASE WHEN event = 'click' AND campaign_id = 'c1' THEN 1 END) AS e2,
    COUNT(
      CASE
        WHEN event = 'click' AND at > CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e3,
    COUNT(
      CASE
        WHEN event = 'open' AND campaign_id = (
          SELECT
            campaign_id
          FROM lc
        )
        THEN 1
      END
    ) AS e4,
    COUNT(
      CASE
        WHEN event = 'click' AND at > CAST('2026-01-16T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e5,
    COUNT(
      CASE
        WHEN event = 'click'
        AND at > CAST('2026-01-02T23:00:00+00:00' AS TIMESTAMPTZ)
        AND at <= CAST('2026-01-16T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e6,
    COUNT(
      CASE
        WHEN event = 'open' AND at > CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e7,
    COUNT(
      CASE
        WHEN event = 'click' AND at > CAST('2026-01-28T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e8,
    COUNT(
      CASE
        WHEN event = 'open' AND at > CAST('2026-01-23T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e9,
    COUNT(
      CASE
        WHEN event = 'open'
        AND at > CAST('2026-01-16T23:00:00+00:00' AS TIMESTAMPTZ)
        AND at <= CAST('2026-01-23T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e10,
    COUNT(
      CASE
        WHEN event = 'click'
        AND at > CAST('2025-12-01T23:00:00+00:00' AS TIMESTAMPTZ)
        AND at <= CAST('2025-12-31T23:00:00+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS e11,
    COUNT(
      CASE
        WHEN event = 'click' AND campaign_id = (
          SELECT
            campaign_id
          FROM lc
        )
        THEN 1
      END
    ) AS e12,
    COUNT(CASE WHEN event = 'open' AND campaign_id = 'c1' THEN 1 END) AS e13,
    COUNT(CASE WHEN event = 'click' AND campaign_id = '2026-01-soldes' THEN 1 END) AS e14
  FROM events_n
  WHERE
    at <= CAST('2026-01-30T23:00:00+00:00' AS TIMESTAMPTZ)
  GROUP BY
    contact_id
), m AS (
  SELECT
    c.*,
    CAST(o.o0 AS DOUBLE PRECISION) / NULLIF(o.o1, 0) AS m_avg_rating,
    CAST(EXTRACT(epoch FROM CAST(CAST('2026-01-31' AS DATE) AS TIMESTAMP) - CAST(CAST(o.o2 AT TIME ZONE 'Europe/Paris' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) AS m_days_since_first_order,
    CAST(EXTRACT(epoch FROM CAST(CAST('2026-01-31' AS DATE) AS TIMESTAMP) - CAST(CAST(o.o3 AT TIME ZONE 'Europe/Paris' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) AS m_days_since_last_order,
    COALESCE(o.o4, 0) AS m_orders_count,
    COALESCE(o.o5, 0) AS m_revenue,
    CAST(o.o5 AS DOUBLE PRECISION) / NULLIF(o.o6, 0) AS m_avg_basket,
    o.o2 AS m_first_order_at,
    o.o3 AS m_last_order_at,
    o.o7 AS m_max_rating,
    CAST(EXTRACT(epoch FROM CAST(CAST('2026-01-31' AS DATE) AS TIMESTAMP) - CAST(CAST(e.e0 AT TIME ZONE 'Europe/Paris' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) AS m_last_open_days,
    CAST(EXTRACT(epoch FROM CAST(CAST('2026-01-31' AS DATE) AS TIMESTAMP) - CAST(CAST(e.e1 AT TIME ZONE 'Europe/Paris' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) AS m_last_click_days,
    COALESCE(e.e2 > 0, FALSE) AS m_clicked_campaign_c1,
    COALESCE(e.e3, 0) AS m_clicks_days_30,
    COALESCE(o.o8, 0) AS m_distinct_column_category_days_90,
    COALESCE(e.e4 > 0, FALSE) AS m_opened_campaign_last,
    COALESCE(o.o9, 0) AS m_orders_days_365_offset_0,
    COALESCE(o.o10, 0) AS m_revenue_days_365_offset_0,
    CASE
      WHEN COALESCE(e.e6, 0) > 0
      THEN CAST(COALESCE(e.e5, 0) AS DOUBLE PRECISION) / CAST(COALESCE(e.e6, 0) AS DOUBLE PRECISION)
    END AS m_trend_measure_clicks_days_14,
    CASE
      WHEN COALESCE(o.o12, 0) > 0
      THEN CAST(COALESCE(o.o11, 0) AS DOUBLE PRECISION) / CAST(COALESCE(o.o12, 0) AS DOUBLE PRECISION)
    END AS m_trend_measure_orders_days_7,
    CASE
      WHEN COALESCE(o.o14, 0) > 0
      THEN CAST(COALESCE(o.o13, 0) AS DOUBLE PRECISION) / CAST(COALESCE(o.o14, 0) AS DOUBLE PRECISION)
    END AS m_trend_measure_revenue_days_30,
    COALESCE(o.o15, 0) AS m_orders_days_30_offset_0,
    COALESCE(o.o16, 0) AS m_orders_days_1_offset_0,
    COALESCE(o.o17, 0) AS m_orders_days_90_offset_30,
    COALESCE(o.o18, 0) AS m_revenue_days_7_offset_7,
    COALESCE(o.o19, 0) AS m_distinct_column_category_days_none,
    COALESCE(o.o20, 0) AS m_distinct_column_category_days_60,
    COALESCE(e.e7, 0) AS m_opens_days_30,
    COALESCE(e.e8, 0) AS m_clicks_days_2,
    CASE
      WHEN COALESCE(o.o21, 0) > 0
      THEN CAST(COALESCE(o.o16, 0) AS DOUBLE PRECISION) / CAST(COALESCE(o.o21, 0) AS DOUBLE PRECISION)
    END AS m_trend_measure_orders_days_1,
    CASE
      WHEN COALESCE(e.e10, 0) > 0
      THEN CAST(COALESCE(e.e9, 0) AS DOUBLE PRECISION) / CAST(COALESCE(e.e10, 0) AS DOUBLE PRECISION)
    END AS m_trend_measure_opens_days_7,
    CASE
      WHEN COALESCE(e.e11, 0) > 0
      THEN CAST(COALESCE(e.e3, 0) AS DOUBLE PRECISION) / CAST(COALESCE(e.e11, 0) AS DOUBLE PRECISION)
    END AS m_trend_measure_clicks_days_30,
    COALESCE(e.e12 > 0, FALSE) AS m_clicked_campaign_last,
    COALESCE(e.e13 > 0, FALSE) AS m_opened_campaign_c1,
    COALESCE(e.e14 > 0, FALSE) AS m_clicked_campaign_2026_01_soldes
  FROM c
  LEFT JOIN o
    ON o.cid = c.cid
  LEFT JOIN e
    ON e.cid = c.cid
), rfm_h AS (
  SELECT
    COALESCE(o.o4, 0) AS f,
    COALESCE(o.o5, 0) AS mv,
    CAST(EXTRACT(epoch FROM CAST(CAST('2026-01-31' AS DATE) AS TIMESTAMP) - CAST(CAST(o.o3 AT TIME ZONE 'Europe/Paris' AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT) AS r
  FROM o
  WHERE
    COALESCE(o.o4, 0) > 0
    AND o.cid IN (
      SELECT
        CAST(contact_id AS VARCHAR)
      FROM contacts
    )
), rfm_r AS (
  SELECT
    v,
    CAST(FLOOR(
      CAST(5 * (
        SUM(k) OVER (ORDER BY v DESC NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - k
      ) AS DOUBLE PRECISION) / CAST(SUM(k) OVER () AS DOUBLE PRECISION)
    ) AS BIGINT) + 1 AS q
  FROM (
    SELECT
      r AS v,
      COUNT(*) AS k
    FROM rfm_h
    GROUP BY
      r
  ) AS t
), rfm_f AS (
  SELECT
    v,
    CAST(FLOOR(
      CAST(5 * (
        SUM(k) OVER (ORDER BY v ASC NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - k
      ) AS DOUBLE PRECISION) / CAST(SUM(k) OVER () AS DOUBLE PRECISION)
    ) AS BIGINT) + 1 AS q
  FROM (
    SELECT
      f AS v,
      COUNT(*) AS k
    FROM rfm_h
    GROUP BY
      f
  ) AS t
), rfm_m AS (
  SELECT
    v,
    CAST(FLOOR(
      CAST(5 * (
        SUM(k) OVER (ORDER BY v ASC NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - k
      ) AS DOUBLE PRECISION) / CAST(SUM(k) OVER () AS DOUBLE PRECISION)
    ) AS BIGINT) + 1 AS q
  FROM (
    SELECT
      mv AS v,
      COUNT(*) AS k
    FROM rfm_h
    GROUP BY
      mv
  ) AS t
), s AS (
  SELECT
    m.*,
    CASE WHEN (
      m_orders_count > 0
    ) THEN rfm_r.q END AS m_r_score,
    CASE WHEN (
      m_orders_count > 0
    ) THEN rfm_f.q END AS m_f_score,
    CASE WHEN (
      m_orders_count > 0
    ) THEN rfm_m.q END AS m_m_score
  FROM m
  LEFT JOIN rfm_r
    ON rfm_r.v = m_days_since_last_order
  LEFT JOIN rfm_f
    ON rfm_f.v = m_orders_count
  LEFT JOIN rfm_m
    ON rfm_m.v = m_revenue
), s2 AS (
  SELECT
    *,
    CASE
      WHEN m_orders_count > 0
      THEN CAST(m_r_score * 100 + m_f_score * 10 + m_m_score AS VARCHAR)
    END AS m_rfm,
    CASE m_r_score * 10 + CAST(FLOOR(CAST(m_f_score + m_m_score + 1 AS DOUBLE PRECISION) / 2) AS BIGINT)
      WHEN 11
      THEN 'lost'
      WHEN 12
      THEN 'hibernating'
      WHEN 13
      THEN 'at_risk'
      WHEN 14
      THEN 'at_risk'
      WHEN 15
      THEN 'cannot_lose'
      WHEN 21
      THEN 'hibernating'
      WHEN 22
      THEN 'hibernating'
      WHEN 23
      THEN 'at_risk'
      WHEN 24
      THEN 'at_risk'
      WHEN 25
      THEN 'cannot_lose'
      WHEN 31
      THEN 'about_to_sleep'
      WHEN 32
      THEN 'about_to_sleep'
      WHEN 33
      THEN 'need_attention'
      WHEN 34
      THEN 'loyal'
      WHEN 35
      THEN 'loyal'
      WHEN 41
      THEN 'promising'
      WHEN 42
      THEN 'potential_loyalist'
      WHEN 43
      THEN 'potential_loyalist'
      WHEN 44
      THEN 'loyal'
      WHEN 45
      THEN 'loyal'
      WHEN 51
      THEN 'new'
      WHEN 52
      THEN 'potential_loyalist'
      WHEN 53
      THEN 'potential_loyalist'
      WHEN 54
      THEN 'champions'
      WHEN 55
      THEN 'champions'
    END AS m_rfm_segment
  FROM s
), g AS (
  SELECT
    *,
    COALESCE(
      (
        (
          CASE
            WHEN 'blocked' IS NULL
            THEN NULL
            ELSE COALESCE('blocked' = ANY(
              c_tags
            ), FALSE)
          END
          OR (
            c_email IS NULL
          )
        )
        OR (
          NOT c_subscribed
        )
      ),
      FALSE
    ) AS x_excluded,
    COALESCE(
      (
        (
          m_opened_campaign_last OR m_clicked_campaign_c1
        )
        OR (
          CAST(m_clicks_days_30 AS DOUBLE PRECISION) >= CAST(2.0 AS DOUBLE PRECISION)
        )
      ),
      FALSE
    ) AS x_0,
    COALESCE(
      (
        (
          (
            CAST(m_trend_measure_revenue_days_30 AS DOUBLE PRECISION) > CAST(1.0 AS DOUBLE PRECISION)
          )
          OR (
            CAST(m_trend_measure_orders_days_7 AS DOUBLE PRECISION) >= CAST(1.0 AS DOUBLE PRECISION)
          )
        )
        OR (
          CAST(m_trend_measure_clicks_days_14 AS DOUBLE PRECISION) > CAST(2.0 AS DOUBLE PRECISION)
        )
      ),
      FALSE
    ) AS x_1,
    COALESCE(
      (
        (
          (
            m_rfm_segment IN ('champions', 'loyal')
          ) AND STARTS_WITH(m_rfm, '5')
        )
        AND (
          CAST(m_r_score AS DOUBLE PRECISION) >= CAST(4.0 AS DOUBLE PRECISION)
        )
      ),
      FALSE
    ) AS x_2,
    COALESCE(
      (
        (
          (
            CAST(m_revenue_days_365_offset_0 AS DOUBLE PRECISION) / NULLIF(CAST(m_orders_days_365_offset_0 AS DOUBLE PRECISION), 0)
          ) > CAST(50.0 AS DOUBLE PRECISION)
        )
        AND (
          CAST(m_distinct_column_category_days_90 AS DOUBLE PRECISION) >= CAST(2.0 AS DOUBLE PRECISION)
        )
      ),
      FALSE
    ) AS x_3,
    COALESCE(
      (
        (
          (
            CAST(m_days_since_first_order AS DOUBLE PRECISION) - CAST(m_days_since_last_order AS DOUBLE PRECISION)
          ) > CAST(30.0 AS DOUBLE PRECISION)
        )
        OR (
          CAST(m_avg_rating AS DOUBLE PRECISION) >= CAST(4.5 AS DOUBLE PRECISION)
        )
      ),
      FALSE
    ) AS x_4
  FROM s2
)
SELECT
  cid AS contact_id,
  c_email,
  c_subscribed,
  c_tags,
  c_first_name,
  m_avg_rating,
  m_days_since_first_order,
  m_days_since_last_order,
  m_orders_count,
  m_revenue,
  m_avg_basket,
  m_first_order_at,
  m_last_order_at,
  m_max_rating,
  m_last_open_days,
  m_last_click_days,
  m_r_score,
  m_rfm,
  m_rfm_segment,
  m_f_score,
  m_m_score,
  m_clicked_campaign_c1,
  m_clicks_days_30,
  m_distinct_column_category_days_90,
  m_opened_campaign_last,
  m_orders_days_365_offset_0,
  m_revenue_days_365_offset_0,
  m_trend_measure_clicks_days_14,
  m_trend_measure_orders_days_7,
  m_trend_measure_revenue_days_30,
  m_orders_days_30_offset_0,
  m_orders_days_1_offset_0,
  m_orders_days_90_offset_30,
  m_revenue_days_7_offset_7,
  m_distinct_column_category_days_none,
  m_distinct_column_category_days_60,
  m_opens_days_30,
  m_clicks_days_2,
  m_trend_measure_orders_days_1,
  m_trend_measure_opens_days_7,
  m_trend_measure_clicks_days_30,
  m_clicked_campaign_last,
  m_opened_campaign_c1,
  m_clicked_campaign_2026_01_soldes,
  x_excluded AS excluded,
  CASE
    WHEN NOT x_excluded AND x_0
    THEN 'fans'
    WHEN NOT x_excluded AND x_1
    THEN 'rising'
    WHEN NOT x_excluded AND x_2
    THEN 'rfm'
    WHEN NOT x_excluded AND x_3
    THEN 'buyers'
    WHEN NOT x_excluded AND x_4
    THEN 'others'
  END AS segment,
  NOT x_excluded AND x_0 AS in_0,
  NOT x_excluded AND x_1 AS in_1,
  NOT x_excluded AND x_2 AS in_2,
  NOT x_excluded AND x_3 AS in_3,
  NOT x_excluded AND x_4 AS in_4
FROM g
