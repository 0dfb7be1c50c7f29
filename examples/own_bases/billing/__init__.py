"""A billing service whose task base classes are written the way guides write them.

Nothing here knows about pytest-celerybase: ``billing/bases.py`` keeps state on classes
and task instances, makes its engine on the production URL and counts with
``prometheus_client``, flaws included.  ``../test_billing_*.py`` test it with the
plugin, with no change to these modules (see the manual's "Test your own base classes").
"""
