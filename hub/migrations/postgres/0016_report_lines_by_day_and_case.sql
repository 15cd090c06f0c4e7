-- Within a day, report lines were ordered by figure, amount and unit, so the lines one commit
-- wrote landed on leaves all over the day's part of the index. Ordered by case after the day, a
-- commit's lines sit together at the day's newest cases; the columns a report filters or groups
-- by are carried in the leaves, so a period's report remains a scan of the index alone.
DROP INDEX report_lines_by_day;
CREATE INDEX report_lines_by_day ON report_lines (day, case_number, seq, figure)
    INCLUDE (amount, township, point, window_code, department, receiver, decider);
