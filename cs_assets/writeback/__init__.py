"""The CRM write-back (reverse ETL): published scores on each CRM account."""
