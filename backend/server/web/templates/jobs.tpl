% rebase('base.tpl', title=title, nav=nav, user=user, csrf=csrf, version=version, page_data=page_data, page='jobs')
<div class="page-head">
  <h1>Jobs</h1>
  <span class="refresh-state muted" id="refresh-state"></span>
</div>
<form class="filters" id="job-filters" method="get" action="/">
  <label>Status
    <select name="status" id="filter-status">
      <option value="">all</option>
      % for s in statuses:
      <option value="{{s}}" {{'selected' if s == status else ''}}>{{s}}</option>
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
<div class="table-wrap">
<table class="list" id="jobs-table">
  <thead><tr><th>Name</th><th>Type</th><th>Status</th><th class="col-progress">Progress</th><th>Project</th>
    <th>Submitted by</th><th>Created</th></tr></thead>
  <tbody id="jobs-body"></tbody>
</table>
</div>
<p class="empty" id="jobs-empty" hidden>No jobs here yet. Submit one from Blender with <em>Render on Flamenco</em>.</p>
<div class="pager">
  <button type="button" id="page-newer" class="link">← Newer</button>
  <span id="page-info" class="muted"></span>
  <button type="button" id="page-older" class="link">Older →</button>
</div>
<noscript><p class="error">These pages need JavaScript to show and refresh the jobs.</p></noscript>
