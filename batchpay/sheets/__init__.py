"""The sheets stage: read a payroll sheet as text (``read``: CSV in ``read_csv``, workbooks in
``read_workbook``, ``read_child`` and ``xlsx_check``, held to ``limits``), validate it
(``validate``, ``damage``), and write spreadsheets (``write``: result files and reports from a
header and rows of text; ``template``). Nothing here knows the journal or the gateway."""
