package main

import (
	"errors"
	"net"

	"github.com/hibiken/asynq"

	"github.com/deskrelay/deskrelay/internal/redisconn"
)

// opsSettings are the operators' ways in, beside the admin login.
type opsSettings struct {
	// viewerUser and viewerPassword are a read-only login for /monitoring/
	// and /v1/status (GET and HEAD only); empty: no such login.
	viewerUser, viewerPassword string
	// metricsListen is the internal address that alone serves /metrics;
	// empty: the main listener serves it.
	metricsListen string
}

// opsSettings reads DESKRELAY_VIEWER_USER, _PASSWORD and DESKRELAY_METRICS_LISTEN.
func (v values) opsSettings(p *problems) opsSettings {
	o := opsSettings{
		viewerUser:     v["DESKRELAY_VIEWER_USER"],
		viewerPassword: v["DESKRELAY_VIEWER_PASSWORD"],
		metricsListen:  v["DESKRELAY_METRICS_LISTEN"],
	}
	if (o.viewerUser == "") != (o.viewerPassword == "") {
		p.add("DESKRELAY_VIEWER_PASSWORD", "DESKRELAY_VIEWER_USER and DESKRELAY_VIEWER_PASSWORD go together")
	}
	if o.viewerUser != "" && o.viewerUser == v["DESKRELAY_ADMIN_USER"] {
		p.add("DESKRELAY_VIEWER_USER", "must differ from DESKRELAY_ADMIN_USER")
	}
	if o.viewerUser != "" && v["DESKRELAY_ADMIN_USER"] == "" {
		p.add("DESKRELAY_VIEWER_USER", "needs DESKRELAY_ADMIN_USER and DESKRELAY_ADMIN_PASSWORD: without them the admin routes are off")
	}
	if o.metricsListen != "" {
		if _, _, err := net.SplitHostPort(o.metricsListen); err != nil {
			p.add("DESKRELAY_METRICS_LISTEN", "want host:port (e.g. 10.0.0.5:9090), got %q", o.metricsListen)
		}
	}
	return o
}

// withRedisPassword sets DESKRELAY_REDIS_PASSWORD (in docker-compose.yml:
// DESKRELAY_REDIS_PASSWORD_FILE, the file Redis itself reads its password
// from) on the connection parsed from DESKRELAY_REDIS_URL. A password in
// both places is an error. For redis-sentinel:// URLs, whose password is the
// sentinels', it is the master's password.
func (v values) withRedisPassword(p *problems, opt asynq.RedisConnOpt) asynq.RedisConnOpt {
	const env = "DESKRELAY_REDIS_PASSWORD"
	pw := v[env]
	if pw == "" || opt == nil {
		return opt
	}
	opt, err := redisconn.WithPassword(opt, pw)
	switch {
	case errors.Is(err, redisconn.ErrTwoPasswords):
		p.add(env, "DESKRELAY_REDIS_URL carries a password too; set it in one place")
	case err != nil:
		p.add(env, "cannot be applied to this kind of DESKRELAY_REDIS_URL")
	}
	return opt
}
