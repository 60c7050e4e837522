// Package redisconn turns the Redis URL an operator configures
// (DESKRELAY_REDIS_URL) into the connection options asynq and go-redis take,
// with a connection pool sized for deskrelay's workers and intake.
//
// URLs:
//
//	redis://[[user]:password@]host:port/db        one server
//	rediss://…                                    the same over TLS
//	redis-socket://[:password@]/path?db=N         a unix socket
//	redis-sentinel://[:sentinel-password@]host1[:port],host2[:port]?master=name
//	                                              a master found through Sentinel (port 26379 by default)
//	redis-cluster://[[user]:password@]host1[:port],host2[:port],…
//	                                              a Redis Cluster (port 6379 by default; database 0 only)
//	rediss-cluster://…                            the same over TLS
//
// A cluster URL needs only some of the nodes: the client learns the rest
// from them. No error of this package repeats the URL, which may hold a
// password.
//
// It imports no other deskrelay package.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Default ports of a host given without one.
const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
)

// want lists the URLs Parse takes, for its errors.
const want = "want redis://host:port/db, rediss://…, redis-cluster://host1:port,host2:port,…, rediss-cluster://…, redis-sentinel://host1,host2?master=name or redis-socket:///path"

// PoolSize is the connection pool deskrelay needs per Redis server (per
// master, on a cluster) when it runs concurrency asynq workers:
//
//	concurrency + 10 × GOMAXPROCS
//
// Each worker holds at most one connection at a time (a task's commands run
// one after another); the rest is go-redis's own default pool (10 per CPU),
// left to the HTTP intake (POST /v1/messages, the webhooks), asynq's
// background work (heartbeat, forwarder, recoverer) and deskrelay's (gate,
// schedule, spool mover). The pool opens connections only when they are
// needed, so a large one costs nothing while idle.
func PoolSize(concurrency int) int {
	return max(concurrency, 0) + 10*runtime.GOMAXPROCS(0)
}

// Parse parses a Redis URL (see the package doc) into asynq's connection
// options, with poolSize connections per server (0: go-redis's default).
// The options' MakeRedisClient gives a redis.UniversalClient: a
// *redis.ClusterClient for a cluster URL, else a *redis.Client.
func Parse(raw string, poolSize int) (asynq.RedisConnOpt, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !validScheme(scheme) {
		return nil, errors.New("not a valid URL (" + want + ")")
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "redis-socket":
		return parseServer(raw, poolSize)
	case "redis-sentinel":
		return parseSentinel(rest, poolSize)
	case "redis-cluster", "rediss-cluster":
		return parseCluster(strings.ToLower(scheme), rest, poolSize)
	default:
		return nil, fmt.Errorf("unsupported scheme %q (%s)", scheme, want)
	}
}

// validScheme: a letter, then letters, digits, +, - or . (RFC 3986).
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && !strings.ContainsRune("+-.", rune(c)) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseServer: redis://, rediss:// and redis-socket://, as asynq parses them.
func parseServer(raw string, poolSize int) (asynq.RedisConnOpt, error) {
	if _, err := url.Parse(raw); err != nil {
		return nil, errors.New("malformed URL (" + want + ")")
	}
	opt, err := asynq.ParseRedisURI(raw)
	if err != nil { // asynq's error repeats the URL: say what is wrong instead
		return nil, errors.New("malformed URL: the database must be a number (redis://host:port/db), a socket needs a path (redis-socket:///path?db=N)")
	}
	o, ok := opt.(asynq.RedisClientOpt)
	if !ok {
		return nil, fmt.Errorf("unexpected connection kind %T", opt)
	}
	o.PoolSize = poolSize
	return o, nil
}

// parseSentinel: redis-sentinel://[:sentinel-password@]host1,host2?master=name.
func parseSentinel(rest string, poolSize int) (asynq.RedisConnOpt, error) {
	a, err := splitURL(rest, defaultSentinelPort)
	if err != nil {
		return nil, fmt.Errorf("redis-sentinel: %w", err)
	}
	master := a.query.Get("master")
	if master == "" {
		return nil, errors.New("redis-sentinel: the master's name is missing (redis-sentinel://host1,host2?master=name)")
	}
	for k := range a.query {
		if k != "master" {
			return nil, fmt.Errorf("redis-sentinel: unknown option %q (only master)", k)
		}
	}
	if a.path != "" && a.path != "/" && a.path != "/0" {
		return nil, errors.New("redis-sentinel: database 0 only: no /db path (redis-sentinel://host1,host2?master=name)")
	}
	return asynq.RedisFailoverClientOpt{
		MasterName:       master,
		SentinelAddrs:    a.hosts,
		SentinelUsername: a.user,
		SentinelPassword: a.password,
		PoolSize:         poolSize,
	}, nil
}

// parseCluster: redis-cluster://[[user]:password@]host1:port,host2:port,….
func parseCluster(scheme, rest string, poolSize int) (asynq.RedisConnOpt, error) {
	a, err := splitURL(rest, defaultPort)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", scheme, err)
	}
	for k := range a.query {
		return nil, fmt.Errorf("%s: unknown option %q (a cluster URL takes none)", scheme, k)
	}
	if a.path != "" && a.path != "/" && a.path != "/0" {
		return nil, fmt.Errorf("%s: a cluster has database 0 only: no /db path", scheme)
	}
	o := ClusterOpt{PoolSize: poolSize}
	o.Addrs, o.Username, o.Password = a.hosts, a.user, a.password
	if scheme == "rediss-cluster" {
		// No ServerName: each node's TLS handshake names the host it dials.
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// authority is a multi-host URL taken apart.
type authority struct {
	user, password string
	hosts          []string // host:port
	path           string
	query          url.Values
}

// splitURL takes apart what follows "scheme://" of a URL with several
// hosts (which url.Parse does not promise to accept). Its errors never
// repeat a part of the URL.
func splitURL(rest, port string) (authority, error) {
	var a authority
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth, tail := rest[:end], rest[end:]
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		if err := a.setUser(auth[:i]); err != nil {
			return a, err
		}
		auth = auth[i+1:]
	}
	hosts, err := splitHosts(auth, port)
	if err != nil {
		return a, err
	}
	a.hosts = hosts
	tail, _, _ = strings.Cut(tail, "#")
	a.path, tail, _ = strings.Cut(tail, "?")
	if a.query, err = url.ParseQuery(tail); err != nil {
		return a, errors.New("malformed options after '?'")
	}
	return a, nil
}

// setUser sets the user and password of userinfo (user:password, :password).
func (a *authority) setUser(userinfo string) error {
	user, pw, _ := strings.Cut(userinfo, ":")
	var err1, err2 error
	a.user, err1 = url.PathUnescape(user)
	a.password, err2 = url.PathUnescape(pw)
	if err1 != nil || err2 != nil {
		return errors.New("malformed user or password (escape special characters as %XX)")
	}
	return nil
}

// splitHosts checks each of the comma-separated hosts, giving one without a
// port the port port.
func splitHosts(list, port string) ([]string, error) {
	if list == "" {
		return nil, errors.New("no host (want host1:port,host2:port,…)")
	}
	var hosts []string
	for i, h := range strings.Split(list, ",") {
		if h == "" {
			return nil, fmt.Errorf("host %d is empty", i+1)
		}
		host, p, err := net.SplitHostPort(h)
		if err != nil { // no port: then no colon either (IPv6: [addr]:port)
			host, p = h, port
			if strings.ContainsAny(host, ":[]") {
				host = ""
			}
		}
		n, perr := strconv.Atoi(p)
		if host == "" || strings.ContainsAny(host, " @/[]") || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("host %d is not host:port", i+1)
		}
		hosts = append(hosts, net.JoinHostPort(host, p))
	}
	return hosts, nil
}

// ClusterOpt connects to a Redis Cluster: asynq's RedisClusterClientOpt with
// the pool size it lacks. asynq, its Inspector and asynqmon take it like any
// RedisConnOpt.
type ClusterOpt struct {
	asynq.RedisClusterClientOpt
	// PoolSize is the connection pool per node (0: go-redis's default).
	PoolSize int
}

// Options are the go-redis options of the cluster client.
func (o ClusterOpt) Options() *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:        append([]string(nil), o.Addrs...),
		MaxRedirects: o.MaxRedirects,
		Username:     o.Username,
		Password:     o.Password,
		DialTimeout:  o.DialTimeout,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.WriteTimeout,
		TLSConfig:    o.TLSConfig,
		PoolSize:     o.PoolSize,
	}
}

// MakeRedisClient returns a *redis.ClusterClient (asynq.RedisConnOpt).
func (o ClusterOpt) MakeRedisClient() any { return redis.NewClusterClient(o.Options()) }

// Password errors of WithPassword.
var (
	ErrTwoPasswords   = errors.New("the URL carries a password too; set it in one place")
	ErrNoPasswordHere = errors.New("a password cannot be set on this kind of connection")
)

// WithPassword sets the password of the Redis server (for Sentinel: of the
// master; the URL's is the sentinels') on opt, which came from Parse. The
// result has the password even with ErrTwoPasswords.
func WithPassword(opt asynq.RedisConnOpt, password string) (asynq.RedisConnOpt, error) {
	var had bool
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		had, o.Password = o.Password != "", password
		opt = o
	case asynq.RedisFailoverClientOpt:
		had, o.Password = o.Password != "", password
		opt = o
	case ClusterOpt:
		had, o.Password = o.Password != "", password
		opt = o
	case asynq.RedisClusterClientOpt:
		had, o.Password = o.Password != "", password
		opt = o
	default:
		return opt, ErrNoPasswordHere
	}
	if had {
		return opt, ErrTwoPasswords
	}
	return opt, nil
}
