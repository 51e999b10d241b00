-- MetricFlow's day-grain time spine for the dbt semantic layer (models/marts/_marts__semantic_models.yml):
-- one row per day over every audit year the warehouse can hold.

{{ config(materialized='table', schema='semantic') }}

{{ calendar_days('2016-01-01', '2031-01-01') }}
