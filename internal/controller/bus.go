package controller

import (
	"sync"

	"github.com/cutover/cutover/internal/store"
)

// bus fans events out to subscribers. A subscriber that does not keep up
// loses events rather than slowing a rollout down.
type bus struct {
	mu   sync.Mutex
	subs map[chan store.Event]string // channel → app filter ("" = all)
}

func (b *bus) subscribe(app string) (<-chan store.Event, func()) {
	ch := make(chan store.Event, 256)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan store.Event]string{}
	}
	b.subs[ch] = app
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

func (b *bus) publish(ev store.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, app := range b.subs {
		if app != "" && app != ev.App {
			continue
		}
		select {
		case ch <- ev:
		default:
		}
	}
}
