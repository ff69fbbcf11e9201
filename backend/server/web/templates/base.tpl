<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{csrf}}">
<title>{{title}} · Flamenco</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/flamenco.css?v={{version}}">
<script src="/static/common.js?v={{version}}" defer></script>
<script src="/static/flamenco.js?v={{version}}" defer></script>
</head>
<body data-page="{{page}}">
<header class="topbar">
  <a class="brand" href="/"><span class="logo" aria-hidden="true"></span>Flamenco</a>
  % if user:
  <nav>
    <a href="/" class="{{'active' if nav == 'jobs' else ''}}">Jobs</a>
    % if user.is_admin:
    <a href="/farm" class="{{'active' if nav == 'farm' else ''}}">Farm</a>
    % end
    % if can_run_workers:
    <a href="/workers" class="{{'active' if nav == 'workers' else ''}}">Workers</a>
    % end
    % if user.is_admin:
    <a href="/managers" class="{{'active' if nav == 'managers' else ''}}">Managers</a>
    % end
    <a href="/archive" class="{{'active' if nav == 'archive' else ''}}">Archive</a>
  </nav>
  <div class="who">
    <span id="who-name">{{user.name}}</span> <span class="role">{{user.role}}</span>
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <button type="submit" class="link" id="sign-out">Sign out</button>
    </form>
  </div>
  % end
</header>
<main>
{{!base}}
</main>
<footer>Flamenco Server {{version}} · times in <span data-time-zone>your time zone</span></footer>
<script type="application/json" id="page-data">{{!page_data}}</script>
</body>
</html>
