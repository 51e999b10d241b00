-- MetricFlow's day-grain time spine for the dbt semantic layer (models/marts/_marts__semantic_models.yml):
-- one row per day over every audit year the warehouse can hold.

{{ config(materialized='table', schema='semantic') }}

select cast(range as date) as date_day
from range(date '2016-01-01', date '2031-01-01', interval 1 day)
