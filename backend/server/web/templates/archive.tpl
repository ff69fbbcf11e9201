% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='archive')
<div class="page-head">
  <h1>Archived jobs</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<p class="muted small">An archived job's record (settings, tasks, attempts, log, file lists) is kept as a
  compressed JSON file; its rows, files and outputs are gone from the Server.</p>
<div class="table-wrap">
<table class="list" id="archive-table">
  <thead><tr><th>Name</th><th>Type</th><th>Ended as</th><th>Project</th><th>Submitted by</th><th>Created</th>
    <th>Archived</th><th>Record</th></tr></thead>
  <tbody id="archive-body"></tbody>
</table>
</div>
<p class="empty" id="archive-empty" hidden>No archived jobs.</p>
