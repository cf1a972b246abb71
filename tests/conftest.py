"""Session-wide test set-up."""

# Locust monkey-patches the stdlib with gevent when it is imported. Some tests import it, others
# import urllib3 (through the kubernetes client) first; urllib3 loaded before the patch makes every
# later SSL context recurse until RecursionError. So patch first, as the locust command itself does.
import locust  # noqa: F401
