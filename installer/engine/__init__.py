"""Running a plan: build_plan (pure: answers and facts in, steps with their changes out), the
runner with its one mutation point, the executors of each kind of step, the journal an
interrupted run resumes from, and the typed events every front end renders through sinks.
"""
