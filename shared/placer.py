"""The namespace of placer order numbers this system assigns (orders placed through the API).

Its own module so the LIS fast path (``shared.lis.orders``) reads it without loading the models.
"""

PLACER_NAMESPACE = "patient-mgt"
