% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='managers')
<div class="page-head">
  <h1>Managers</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<div class="table-wrap">
<table class="list" id="managers-table">
  <thead><tr><th>Manager</th><th>Link</th><th>Last seen</th><th>Queue</th><th>Workers</th><th>Task types</th>
    <th>Projects</th><th>Version</th><th>URL</th></tr></thead>
  <tbody id="managers-body"></tbody>
</table>
</div>
<p class="empty" id="managers-empty" hidden>No managers yet: <code>flamenco-server create-manager NAME</code>.</p>
