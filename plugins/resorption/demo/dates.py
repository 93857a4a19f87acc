"""The fictional calendar: the day the data describes and the milestones before it.

Every date of the demonstration hangs on these days, never on the clock.
"""

from datetime import date, timedelta

# The day the fictional data describes. Fixed, so that a run today and a run
# next month give the same rows; earlier clocks fall back to today.
AS_OF = date(2026, 6, 30)
# The platform opened then: older sites were entered during its first months.
PLATFORM_LAUNCH = date(2019, 5, 15)
# The earliest day a closed site may have closed.
FIRST_CLOSING = date(2019, 1, 1)
DAYS_30 = timedelta(days=30)
