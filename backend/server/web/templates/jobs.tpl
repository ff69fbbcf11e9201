% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, can_run_workers=can_run_workers, page='jobs')
<div class="page-head">
  <h1>Jobs</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<form class="filters" id="job-filters" method="get" action="/">
  <label>Search
    <input type="search" name="q" id="filter-q" value="{{q}}" placeholder="job name or submitter" maxlength="200">
  </label>
  <label>Status
    <select name="status" id="filter-status">
      <option value="">all</option>
      % for s, label in statuses:
      <option value="{{s}}" {{'selected' if s == status else ''}}>{{label}}</option>
      % end
    </select>
  </label>
  % if len(projects) > 1:
  <label>Project
    <select name="project" id="filter-project">
      <option value="">all</option>
      % for p in projects:
      <option value="{{p.id}}" {{'selected' if p.id == project else ''}}>{{p.name}}</option>
      % end
    </select>
  </label>
  % end
  <noscript><button type="submit">Filter</button></noscript>
</form>
<div class="bulk" id="bulk-bar" hidden>
  <span id="bulk-count"></span>
  <button type="button" class="action" data-bulk="pause">Pause</button>
  <button type="button" class="action" data-bulk="resume">Resume</button>
  <button type="button" class="action" data-bulk="requeue-failed">Retry failed tasks</button>
  <button type="button" class="action" data-bulk="requeue">Requeue</button>
  <label class="inline-field">Priority <input type="number" id="bulk-priority" min="1" max="100" value="50"></label>
  <button type="button" class="action" data-bulk="priority">Set priority</button>
  <button type="button" class="action danger" data-bulk="cancel">Cancel</button>
  <button type="button" class="action danger" data-bulk="delete">Delete</button>
  % if user.is_admin:
  <button type="button" class="action" data-bulk="archive">Archive</button>
  % end
  <button type="button" class="link" id="bulk-clear">Clear selection</button>
</div>
<p class="error" id="bulk-error" role="alert" hidden></p>
<div class="table-wrap">
<table class="list" id="jobs-table">
  <thead><tr><th class="col-check"><input type="checkbox" id="select-all" aria-label="select all jobs on this page"></th>
    <th><button type="button" class="sort" data-sort="name">Name</button></th>
    <th><button type="button" class="sort" data-sort="type">Type</button></th>
    <th><button type="button" class="sort" data-sort="status">Status</button></th>
    <th class="col-progress">Progress</th>
    <th><button type="button" class="sort" data-sort="priority">Priority</button></th>
    <th>Project</th><th>Submitted by</th>
    <th><button type="button" class="sort" data-sort="created">Created</button></th></tr></thead>
  <tbody id="jobs-body"></tbody>
</table>
</div>
<p class="empty" id="jobs-empty" hidden>No jobs here yet. Submit one from Blender with <em>Render on Flamenco</em>.</p>
<div class="pager">
  <button type="button" id="page-newer" class="link">← Previous</button>
  <span id="page-info" class="muted"></span>
  <button type="button" id="page-older" class="link">Next →</button>
</div>
<noscript><p class="error">These pages need JavaScript to show and refresh the jobs.</p></noscript>
