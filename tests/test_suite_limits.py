"""The suite ends within CI's 90 minutes even when a test hangs: each test has a time limit."""

CI_SECONDS = 5400


def test_every_test_has_a_time_limit_well_inside_ci(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is in the test extra: make install"
    limit = float(pytestconfig.getini("timeout") or 0)
    assert 0 < limit <= CI_SECONDS / 4, limit
